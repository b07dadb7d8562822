#!/usr/bin/env bash
# The README's first command: installs dependencies (Debian 12, apt-get),
# builds layerpool, and runs the main job on a small model.
#
# The main job is a local cluster: `layerpool run --local-workers 2` starts
# two worker processes on loopback, plans the split of the model's layers over
# them, loads one stage in each, streams the generated text through the
# pipeline, and shuts everything down. Describing the model, tokenizing, and
# the same prompt in one process come first, so the two outputs can be
# compared. Last, the same pipeline serves the OpenAI-compatible HTTP API
# (`run --local-workers 2 --http`) and curl asks it for a completion and for
# the /status the web page's pipeline view shows.
#
#   LAYERPOOL_SHARED=/path/to/shared   where real models are (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
cmake -G Ninja -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target layerpool
lp=build/cli/layerpool

shared="${LAYERPOOL_SHARED:-../shared}"
model="$shared/models/stories260K/stories260K-F32.gguf"
if [ -f "$model" ]; then
  echo "== real model: $model"
else
  echo "== no real model under $shared/models: using a small synthetic model"
  mkdir -p out
  model=out/synth-tiny-q8_0.gguf
  "$lp" synth --arch llama --dim 64 --layers 4 --heads 4 --kv-heads 2 \
    --ffn 128 --vocab 512 --type Q8_0 -o "$model"
fi

echo; echo "== layerpool inspect $model"
"$lp" inspect --no-tensors "$model"

echo; echo "== layerpool tokenize --model $model --add-special"
printf '%s\n' '"Once upon a time"' '"The little dog ran to the park."' |
  "$lp" tokenize --model "$model" --add-special

echo; echo "== layerpool run --model $model --prompt 'Once upon a time' --n-predict 48 --temp 0"
"$lp" run --model "$model" --prompt "Once upon a time" --n-predict 48 --temp 0

echo; echo "== the same through a pipeline of 2 local workers: layerpool run ... --local-workers 2"
"$lp" run --model "$model" --prompt "Once upon a time" --n-predict 48 --temp 0 --local-workers 2

echo; echo "== the OpenAI-compatible HTTP API over the same pipeline: layerpool run ... --local-workers 2 --http 127.0.0.1:0"
log=$(mktemp)
"$lp" run --model "$model" --local-workers 2 --http 127.0.0.1:0 >"$log" 2>/dev/null &
pid=$!
for _ in $(seq 300); do grep -q "^http listening on" "$log" && break; sleep 0.1; done
addr=$(sed -n 's/^http listening on //p' "$log")
echo "curl http://$addr/v1/completions -d '{\"prompt\": \"Once upon a time\", \"max_tokens\": 24, \"temperature\": 0}'"
curl -s "http://$addr/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}'
echo
echo "curl http://$addr/status   # what the web page at http://$addr/ shows of the pipeline"
curl -s "http://$addr/status"
echo
echo "(the web page, chat and pipeline view, is at http://HOST:PORT/ of any 'serve' or"
echo " 'run --local-workers K --http HOST:PORT'; this one stops now)"
kill -INT "$pid"
wait "$pid" || true
rm -f "$log"
