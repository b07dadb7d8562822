#!/usr/bin/env bash
# `layerpool synth` writes a model that inspect and tokenize accept, in
# every file type it offers; bad shapes fail with one error line.
# Usage: cli_synth_test.sh LAYERPOOL
set -uo pipefail
lp="$1"; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for type in F32 F16 BF16 Q8_0 Q4_0 Q4_K_M Q6_K; do
  if ! "$lp" synth --dim 256 --layers 2 --heads 4 --kv-heads 2 --ffn 512 \
       --vocab 1000 --type "$type" -o "$tmp/m.gguf" >/dev/null 2>"$tmp/err"; then
    echo "FAIL: synth $type: $(cat "$tmp/err")"; fail=1; continue
  fi
  "$lp" inspect "$tmp/m.gguf" >"$tmp/out" || { echo "FAIL: inspect $type"; fail=1; }
  grep -q "layers 2, embedding 256, feed-forward 512, heads 4 (kv 2)" "$tmp/out" ||
    { echo "FAIL: $type hyper-parameters"; cat "$tmp/out"; fail=1; }
  ids=$(echo '"hello world"' | "$lp" tokenize --model "$tmp/m.gguf" --add-special)
  # BOS is the second-to-last id of the generated vocabulary.
  case "$ids" in \[998,*\]) ;; *) echo "FAIL: tokenize $type gave '$ids'"; fail=1;; esac
done
"$lp" synth --dim 100 --layers 2 --heads 3 --ffn 64 --vocab 300 -o "$tmp/bad.gguf" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "^error: --heads 3 does not divide --dim 100" "$tmp/err" ||
  { echo "FAIL: bad shape: $(cat "$tmp/err")"; fail=1; }
[ ! -e "$tmp/bad.gguf" ] || { echo "FAIL: bad shape left a file"; fail=1; }
"$lp" synth --help | grep -q "llama-70b" || { echo "FAIL: --help lacks presets"; fail=1; }
# Interrupted mid-write: no .tmp (and no model) is left behind.
"$lp" synth --preset llama-1b --type Q4_K_M --threads 1 -o "$tmp/big.gguf" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -e "$tmp/big.gguf.tmp" ] && break; sleep 0.05; done
[ -e "$tmp/big.gguf.tmp" ] || { echo "FAIL: synth did not start writing"; fail=1; }
kill -INT $pid; wait $pid
[ ! -e "$tmp/big.gguf.tmp" ] && [ ! -e "$tmp/big.gguf" ] ||
  { echo "FAIL: an interrupted synth left $(ls "$tmp")"; fail=1; }
exit $fail
