#!/usr/bin/env bash
# `layerpool inspect` on every GGUF under $SHARED/models must exit 0 and print
# a tensor total; on every corrupt file of the fuzz corpus it must exit 1 with
# exactly one "error: " line on stderr and nothing on stdout.
# Usage: cli_inspect_test.sh LAYERPOOL GGUF_CORPUS SHARED_DIR
set -uo pipefail
lp="$1"; corpus_tool="$2"; shared="${LAYERPOOL_SHARED:-$3}"
[ -d "$shared/models" ] || { echo "FAIL: shared data not found at $shared"; exit 1; }
fail=0; n_good=0; n_bad=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

while IFS= read -r f; do
  if ! "$lp" inspect "$f" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL: inspect $f: $(cat "$tmp/err")"; fail=1
  elif ! grep -q "^totals: " "$tmp/out"; then
    echo "FAIL: inspect $f printed no totals"; fail=1
  fi
  n_good=$((n_good + 1))
done < <(find "$shared/models" -name '*.gguf' | sort)

"$corpus_tool" "$tmp" || { echo "FAIL: writing corpus"; exit 1; }
for f in "$tmp"/bad-*.gguf; do
  "$lp" inspect "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ "$rc" -ne 1 ] || [ -s "$tmp/out" ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] ||
     ! grep -q '^error: ' "$tmp/err"; then
    echo "FAIL: inspect $(basename "$f"): rc=$rc stderr=$(cat "$tmp/err")"; fail=1
  fi
  n_bad=$((n_bad + 1))
done
"$lp" inspect /nonexistent.gguf 2>"$tmp/err"; [ $? -eq 1 ] || { echo "FAIL: missing file"; fail=1; }

echo "inspect: $n_good real files, $n_bad corrupt files checked"
[ "$n_good" -ge 30 ] || { echo "FAIL: expected at least 30 real GGUF files"; fail=1; }
exit $fail
