#!/usr/bin/env bash
# Writes golden.json: llama.cpp's perplexity and greedy text on TinyStories
# with Llama 3.1 RoPE factors added (factor 8, original context 32: most of
# its 8 rotation pairs scaled, so outputs depend on the factors), for
# check_rope_scaling.py.
#
#   tests/rope_scaling/make_golden.sh /path/to/llama.cpp BUILD_DIR
# llama.cpp: a CPU build someone made there (build/bin/llama-perplexity and
# llama-simple); BUILD_DIR: layerpool's build (tests/add_rope_freqs). Builds
# nothing.
set -euo pipefail
llama="${1:?usage: make_golden.sh LLAMA_CPP_DIR LAYERPOOL_BUILD_DIR}"
build="${2:?usage: make_golden.sh LLAMA_CPP_DIR LAYERPOOL_BUILD_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
shared="${LAYERPOOL_SHARED:-$here/../../../shared}"
commit=$(git -C "$llama" rev-parse HEAD 2>/dev/null || cat "$llama/COMMIT")
base=models/tinystories-656K/TinyStories-656K-Q8_0.gguf
model=$(mktemp --suffix=.gguf)
trap 'rm -f "$model"' EXIT
"$build/tests/add_rope_freqs" "$shared/$base" "$model" 8 32
ppl=$("$llama/build/bin/llama-perplexity" -m "$model" -f "$shared/golden/text/stories.txt" \
      -c 128 -b 128 -t 1 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
greedy=""
for prompt in "Once upon a time" "The little dog"; do
  out=$("$llama/build/bin/llama-simple" -m "$model" -n 48 "$prompt" 2>/dev/null)
  text=$(python3 -c 'import json,sys; o, p = sys.argv[1], sys.argv[2]; i = o.index(p) + len(p); print(json.dumps({"prompt": p, "n_predict": 48, "text": o[i:]}))' "$out" "$prompt")
  greedy="${greedy:+$greedy,}$text"
done
cat > "$here/golden.json" <<JSON
{"llama_cpp_commit": "$commit",
 "base": "$base",
 "base_sha256": "$(sha256sum "$shared/$base" | cut -d' ' -f1)",
 "make": "add_rope_freqs BASE MODEL 8 32",
 "model_sha256": "$(sha256sum "$model" | cut -d' ' -f1)",
 "perplexity": {"command": "llama-perplexity -m MODEL -f shared/golden/text/stories.txt -c 128 -b 128 -t 1", "ppl": $ppl},
 "greedy_command": "llama-simple -m MODEL -n 48 PROMPT",
 "greedy": [$greedy]}
JSON
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$here/golden.json"
echo "wrote $here/golden.json (llama.cpp $commit)"
