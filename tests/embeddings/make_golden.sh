#!/usr/bin/env bash
# Writes golden.json: llama.cpp's llama-embedding vectors (mean pooling, L2
# normalised) for the texts below on models in ../shared, for
# tests/embeddings/check_embeddings.py.
#
#   tests/embeddings/make_golden.sh /path/to/llama.cpp  (a CPU build someone
#   made there, with build/bin/llama-embedding; this script builds nothing)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/golden_args.sh"
texts=("Once upon a time" "The little dog ran to the park to play with a red ball."
       "Lily and Tom went to the beach. They built a big sand castle and a small one. Then the sea came and took the small castle away. Lily was sad, but Tom said they could build another one tomorrow.")
models=(tinystories-656K/TinyStories-656K-Q8_0.gguf tinystories-656K/TinyStories-656K-F32.gguf
        stories260K/stories260K-F32.gguf synth-12L/synth-12L-Q4_K_M.gguf)
{
  echo "{\"llama_cpp_commit\": \"$commit\","
  echo " \"command\": \"llama-embedding -m MODEL -p TEXT --pooling mean --embd-normalize 2 --embd-output-format json -t 2 -c 512 -b 512 -ub 512\","
  echo " \"models\": {"
  for mi in "${!models[@]}"; do
    m=${models[$mi]}
    echo "  \"$m\": ["
    for ti in "${!texts[@]}"; do
      t=${texts[$ti]}
      out=$("$llama/build/bin/llama-embedding" -m "$shared/models/$m" -p "$t" --pooling mean \
            --embd-normalize 2 --embd-output-format json -t 2 -c 512 -b 512 -ub 512 2>/dev/null)
      vec=$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["data"][0]["embedding"]))' <<<"$out")
      sep=","; [ "$ti" -eq $((${#texts[@]} - 1)) ] && sep=""
      echo "   {\"text\": $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$t"), \"embedding\": $vec}$sep"
    done
    sep=","; [ "$mi" -eq $((${#models[@]} - 1)) ] && sep=""
    echo "  ]$sep"
  done
  echo " }}"
} > "$here/golden.json"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$here/golden.json"
echo "wrote $here/golden.json (llama.cpp $commit)"
