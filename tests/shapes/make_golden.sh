#!/usr/bin/env bash
# Writes golden.json: llama.cpp's perplexity and greedy text on small
# random-weight models of shapes the llama architecture allows beyond the
# plain one, made by `layerpool synth` (deterministic: same flags, same
# bytes), for check_shapes.py. Random weights make greedy decoding follow
# tiny logit differences, so equal text is a sharp test.
#
#   tests/shapes/make_golden.sh /path/to/llama.cpp BUILD_DIR
# llama.cpp: a CPU build someone made there (build/bin/llama-perplexity,
# llama-simple); BUILD_DIR: layerpool's build. Builds nothing.
set -euo pipefail
needs_build=1
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/golden_args.sh"
vocab=models/tinystories-656K/TinyStories-656K-Q8_0.gguf
# name|synth flags (--vocab-from and -o are added); the check splits the
# layers in halves over two workers. gemma2 needs 26, 42 or 46 layers: llama.cpp
# picks its query scale by layer count and refuses others. The windows are
# shorter than the 128-token perplexity chunks and than prompt + 32 tokens,
# so masking shows in both prefill and decode.
shapes=(
  "head-dim-24 (Mistral-Nemo style: key_length != embedding / heads)|--dim 64 --layers 4 --heads 4 --kv-heads 2 --head-dim 24 --ffn 128 --type F32 --ctx 512 --seed 11"
  "head-dim-24 Q8_0|--dim 64 --layers 4 --heads 4 --kv-heads 2 --head-dim 24 --ffn 128 --type Q8_0 --ctx 512 --seed 12"
  "qwen2 (QKV biases, NeoX RoPE)|--arch qwen2 --dim 64 --layers 4 --heads 4 --kv-heads 2 --ffn 128 --type F32 --ctx 512 --seed 21"
  "qwen2 Q8_0|--arch qwen2 --dim 128 --layers 4 --heads 8 --kv-heads 2 --ffn 256 --type Q8_0 --ctx 512 --seed 22"
  "phi3 (fused QKV and gate/up, Q scaled before attention)|--arch phi3 --dim 64 --layers 4 --heads 4 --kv-heads 2 --ffn 128 --type F32 --ctx 512 --seed 31"
  "phi3 Q8_0|--arch phi3 --dim 128 --layers 4 --heads 8 --kv-heads 8 --ffn 256 --type Q8_0 --ctx 512 --seed 32"
  "phi3 sliding window 24|--arch phi3 --dim 64 --layers 4 --heads 4 --kv-heads 2 --ffn 128 --type F32 --ctx 512 --sliding-window 24 --seed 33"
  "phi3 LongRoPE, long factors (original context 32 < every context used)|--arch phi3 --dim 64 --layers 4 --heads 4 --kv-heads 2 --ffn 128 --type Q8_0 --ctx 512 --longrope-original-ctx 32 --seed 34"
  "phi3 LongRoPE, short factors (original context 1024)|--arch phi3 --dim 64 --layers 4 --heads 4 --kv-heads 2 --ffn 128 --type Q8_0 --ctx 512 --longrope-original-ctx 1024 --seed 35"
  "gemma2 (soft caps, post-norms, GELU, scaled embeddings, window 16 on even layers)|--arch gemma2 --dim 64 --layers 26 --heads 4 --kv-heads 2 --ffn 128 --type F32 --ctx 512 --sliding-window 16 --seed 41"
  "mixtral (llama with 4 experts, 2 per token)|--dim 64 --layers 4 --heads 4 --kv-heads 2 --ffn 128 --experts 4 --experts-used 2 --type F32 --ctx 512 --seed 51"
  "mixtral 8 experts Q8_0|--dim 128 --layers 4 --heads 8 --kv-heads 2 --ffn 192 --experts 8 --experts-used 2 --type Q8_0 --ctx 512 --seed 52"
  "mixtral 8 experts Q4_K_M (Q8_0 attn_k/v, Q5_K attn_output, Q6_K ffn_down_exps as llama-quantize)|--dim 256 --layers 4 --heads 8 --kv-heads 2 --ffn 256 --experts 8 --experts-used 2 --type Q4_K_M --ctx 512 --seed 53"
  "gemma2 27B-style (46 layers: Q scaled by embedding / heads, not head dim)|--arch gemma2 --dim 64 --layers 46 --heads 4 --kv-heads 2 --head-dim 32 --ffn 128 --type Q8_0 --ctx 512 --sliding-window 16 --seed 43"
  "gemma2 Q8_0, head dim 32|--arch gemma2 --dim 128 --layers 26 --heads 8 --kv-heads 4 --head-dim 32 --ffn 256 --type Q8_0 --ctx 512 --sliding-window 40 --seed 42"
)
model=$(mktemp --suffix=.gguf)
trap 'rm -f "$model"' EXIT
entries=""
for entry in "${shapes[@]}"; do
  name=${entry%%|*}
  flags=${entry#*|}
  # shellcheck disable=SC2086
  "$build/cli/layerpool" synth $flags --vocab-from "$shared/$vocab" -o "$model" >/dev/null 2>&1
  ppl=$("$llama/build/bin/llama-perplexity" -m "$model" -f "$shared/golden/text/stories.txt" \
        -c 128 -b 128 -t 1 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
  greedy=""
  for prompt in "Once upon a time" "The little dog"; do
    out=$("$llama/build/bin/llama-simple" -m "$model" -n 32 "$prompt" 2>/dev/null)
    greedy="${greedy:+$greedy,}$(python3 -c 'import json,sys; o, p = sys.argv[1], sys.argv[2]; print(json.dumps({"prompt": p, "n_predict": 32, "text": o[o.index(p) + len(p):]}))' "$out" "$prompt")"
  done
  entries="${entries:+$entries,
}  {\"name\": $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$name"), \"synth\": \"$flags\", \"model_sha256\": \"$(sha256sum "$model" | cut -d' ' -f1)\", \"ppl\": $ppl, \"greedy\": [$greedy]}"
done
cat > "$here/golden.json" <<JSON
{"llama_cpp_commit": "$commit",
 "vocab_from": "$vocab",
 "perplexity_command": "llama-perplexity -m MODEL -f shared/golden/text/stories.txt -c 128 -b 128 -t 1",
 "greedy_command": "llama-simple -m MODEL -n 32 PROMPT",
 "shapes": [
$entries
 ]}
JSON
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$here/golden.json"
echo "wrote $here/golden.json (llama.cpp $commit)"
