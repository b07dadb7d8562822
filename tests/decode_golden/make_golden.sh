#!/usr/bin/env bash
# Writes golden.json: llama.cpp's one-token decode logits (hash and top 8 of
# every step) for decode_golden_test, on models of ../shared and tests/shapes.
#
#   tests/decode_golden/make_golden.sh /path/to/llama.cpp BUILD_DIR
# llama.cpp: a CPU build someone made there (build/bin/libllama.so and its
# headers). This script compiles only our llama_decode_logits.cc against it.
# BUILD_DIR: layerpool's build, whose `synth` makes the random-weight models
# of tests/shapes again (same flags, same bytes).
set -euo pipefail
needs_build=1
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/golden_args.sh"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
g++ -O2 -std=c++17 "$here/llama_decode_logits.cc" -I"$llama/include" -I"$llama/ggml/include" \
  -L"$llama/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$llama/build/bin" \
  -o "$scratch/llama_decode_logits"
n_predict=48
vocab=models/tinystories-656K/TinyStories-656K-Q8_0.gguf
# model|prompt|threads|exact|tolerance (when not exact). The model is a file
# under shared/ or "shape NAME": tests/shapes' random-weight model of that
# name, made again by synth from the flags in tests/shapes/golden.json.
runs=(
  "models/tinystories-656K/TinyStories-656K-Q8_0.gguf|The little dog|1|true|0"
  "models/tinystories-656K/TinyStories-656K-Q8_0.gguf|One day, a girl named|2|true|0"
  "models/tinystories-656K/TinyStories-656K-Q4_0.gguf|The little dog|1|true|0"
  "models/tinystories-656K/TinyStories-656K-F32.gguf|The little dog|1|false|1e-4"
  "models/synth-12L/synth-12L-Q8_0.gguf|Once upon a time|1|true|0"
  "models/synth-12L/synth-12L-Q4_K_M.gguf|Once upon a time|1|true|0"
  "shape qwen2 Q8_0|Once upon a time|1|true|0"
  "shape phi3 sliding window 24|Once upon a time|1|false|1e-3"
  "shape phi3 LongRoPE, long|Once upon a time|1|true|0"
  "shape phi3 LongRoPE, short|Once upon a time|1|true|0"
  "shape gemma2 Q8_0, head dim 32|Once upon a time|1|true|0"
  "shape gemma2 27B-style|Once upon a time|1|true|0"
  "shape mixtral 8 experts Q8_0|Once upon a time|1|true|0"
  "shape mixtral 8 experts Q4_K_M|Once upon a time|1|true|0"
)
# The synth flags of the shape whose name starts with $1.
shape_flags() {
  python3 - "$here/../shapes/golden.json" "$1" <<'PY'
import json, sys
shapes = json.load(open(sys.argv[1]))
print(next(s["synth"] for s in shapes["shapes"] if s["name"].startswith(sys.argv[2])))
PY
}
{
  echo "{\"llama_cpp_commit\": \"$commit\","
  echo " \"vocab_from\": \"$vocab\","
  echo " \"command\": \"llama_decode_logits MODEL $n_predict PROMPT (tests/decode_golden/llama_decode_logits.cc, n_ctx 512, 1 thread, f16 KV)\","
  echo " \"runs\": ["
  sep=""
  for run in "${runs[@]}"; do
    IFS='|' read -r model prompt threads exact tolerance <<<"$run"
    file="$shared/$model"
    if [[ $model == shape* ]]; then
      model="synth $(shape_flags "${model#shape }")"
      file="$scratch/synth.gguf"
      # shellcheck disable=SC2086
      "$build/cli/layerpool" $model --vocab-from "$shared/$vocab" -o "$file" >/dev/null 2>&1
    fi
    printf '%s{"model": "%s", "prompt": "%s", "threads": %s, "exact": %s, "tolerance": %s,\n  ' \
      "$sep" "$model" "$prompt" "$threads" "$exact" "$tolerance"
    "$scratch/llama_decode_logits" "$file" "$n_predict" "$prompt" | sed '1s/^{//'
    sep=","
  done
  echo " ]}"
} > "$here/golden.json"
python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["runs"]), "runs")' "$here/golden.json"
echo "wrote $here/golden.json (llama.cpp $commit)"
