#!/usr/bin/env bash
# Writes golden.json: llama.cpp's perplexity and greedy text on TinyStories
# with RoPE scaling added (add_rope_freqs): Llama 3.1's rope_freqs (factor 8,
# original context 32: most of its 8 rotation pairs scaled) and YaRN
# (factor 4, original context 64). On this trained model each moves
# llama.cpp's perplexity far from the plain model's, so matching it means
# the scaling is computed as llama.cpp does. For check_rope_scaling.py.
#
#   tests/rope_scaling/make_golden.sh /path/to/llama.cpp BUILD_DIR
# llama.cpp: a CPU build someone made there (build/bin/llama-perplexity and
# llama-simple); BUILD_DIR: layerpool's build (tests/add_rope_freqs). Builds
# nothing.
set -euo pipefail
needs_build=1
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/golden_args.sh"
base=models/tinystories-656K/TinyStories-656K-Q8_0.gguf
model=$(mktemp --suffix=.gguf)
trap 'rm -f "$model"' EXIT
# name|add_rope_freqs arguments before IN OUT|after
variants=("llama3 rope_freqs (factor 8, original context 32)||8 32"
          "yarn (factor 4, original context 64)|--yarn|4 64")
entries=""
for v in "${variants[@]}"; do
  name=${v%%|*}; rest=${v#*|}; pre=${rest%%|*}; post=${rest#*|}
  # shellcheck disable=SC2086
  "$build/tests/add_rope_freqs" $pre "$shared/$base" "$model" $post
  ppl=$("$llama/build/bin/llama-perplexity" -m "$model" -f "$shared/golden/text/stories.txt" \
        -c 128 -b 128 -t 1 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
  greedy=""
  for prompt in "Once upon a time" "The little dog"; do
    out=$("$llama/build/bin/llama-simple" -m "$model" -n 48 "$prompt" 2>/dev/null)
    greedy="${greedy:+$greedy,}$(python3 -c 'import json,sys; o, p = sys.argv[1], sys.argv[2]; print(json.dumps({"prompt": p, "n_predict": 48, "text": o[o.index(p) + len(p):]}))' "$out" "$prompt")"
  done
  entries="${entries:+$entries,
}  {\"name\": \"$name\", \"args_before\": \"$pre\", \"args_after\": \"$post\", \"model_sha256\": \"$(sha256sum "$model" | cut -d' ' -f1)\", \"ppl\": $ppl, \"greedy\": [$greedy]}"
done
cat > "$here/golden.json" <<JSON
{"llama_cpp_commit": "$commit",
 "base": "$base",
 "base_sha256": "$(sha256sum "$shared/$base" | cut -d' ' -f1)",
 "make": "add_rope_freqs [ARGS_BEFORE] BASE MODEL ARGS_AFTER",
 "perplexity_command": "llama-perplexity -m MODEL -f shared/golden/text/stories.txt -c 128 -b 128 -t 1",
 "greedy_command": "llama-simple -m MODEL -n 48 PROMPT",
 "variants": [
$entries
 ]}
JSON
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$here/golden.json"
echo "wrote $here/golden.json (llama.cpp $commit)"
