#!/usr/bin/env bash
# deploy/bundle.sh on the built layerpool: the bundle, unpacked from its
# tarball into another folder and renamed, runs with an empty environment and
# takes gRPC, protobuf and Abseil from its own lib/, not from the system.
# Usage: bundle_test.sh LAYERPOOL SHARED_DIR
set -uo pipefail
lp="$1"; shared="${LAYERPOOL_SHARED:-$2}"
bundle_sh="$(cd "$(dirname "$0")/.." && pwd)/deploy/bundle.sh"
model="$shared/models/stories260K/stories260K-F32.gguf"
[ -f "$model" ] || { echo "FAIL: $model not found (LAYERPOOL_SHARED)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
run() { env -i PATH=/usr/bin:/bin "$@"; }

if ! "$bundle_sh" --out "$tmp/out" --name lp-test "$lp" >"$tmp/log" 2>&1; then
  echo "FAIL: bundle.sh"; cat "$tmp/log"; exit 1
fi
tail -n 4 "$tmp/log"
mkdir "$tmp/elsewhere"
tar -C "$tmp/elsewhere" -xzf "$tmp/out/lp-test.tar.gz" || { echo "FAIL: unpacking"; exit 1; }
rm -rf "$tmp/out"
mv "$tmp/elsewhere/lp-test" "$tmp/elsewhere/moved"
b="$tmp/elsewhere/moved"
[ -s "$b/README" ] || { echo "FAIL: no README"; fail=1; }

# (a) the program starts.
if ! (cd "$tmp" && run "$b/bin/layerpool" --help >"$tmp/help" 2>&1) ||
   ! grep -q 'inspect' "$tmp/help"; then
  echo "FAIL: bin/layerpool --help: $(head -n 3 "$tmp/help")"; fail=1
fi

# (b) the libraries that the target lacks come from the bundle.
lib=$(cd "$b/lib" && pwd -P)
run ldd "$b/bin/layerpool" >"$tmp/ldd" 2>&1 || { echo "FAIL: ldd: $(cat "$tmp/ldd")"; fail=1; }
if grep -q 'not found' "$tmp/ldd"; then
  echo "FAIL: unresolved: $(grep 'not found' "$tmp/ldd")"; fail=1
fi
for want in 'libgrpc++.so' 'libprotobuf.so' 'libabsl_'; do
  paths=$(awk -v w="$want" 'index($1, w) == 1 && $2 == "=>" { print $3 }' "$tmp/ldd")
  if [ -z "$paths" ]; then
    echo "FAIL: layerpool does not load $want*"; fail=1; continue
  fi
  while IFS= read -r p; do
    real=$(readlink -f "$p")
    [ "${real%/*}" = "$lib" ] || { echo "FAIL: $want* from $p, not from the bundle"; fail=1; }
  done <<<"$paths"
done

# (c) it does real work.
if ! (cd "$tmp" && run "$b/bin/layerpool" inspect "$model" >"$tmp/inspect" 2>&1) ||
   ! grep -q '^totals: ' "$tmp/inspect"; then
  echo "FAIL: bin/layerpool inspect: $(head -n 3 "$tmp/inspect")"; fail=1
fi

[ "$fail" -eq 0 ] &&
  echo "bundle: the moved copy runs, $(find "$b/lib" -type f | wc -l) libraries from its lib/"
exit $fail
