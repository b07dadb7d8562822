#!/usr/bin/env bash
# Fuzzes the GGUF reader with libFuzzer (clang-14, ASan + UBSan) for a
# bounded time, seeded with the hand-made valid and corrupt files of
# gguf_cases.cc. Usage: tests/fuzz/run.sh [SECONDS]   (default 60; 0 skips)
# A crash leaves its input as build-fuzz/crash-* and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-60}"
if [ "$seconds" -le 0 ]; then
  echo "fuzz: skipped (0 seconds)"
  exit 0
fi

CC=clang-14 CXX=clang++-14 cmake -G Ninja -S . -B build-fuzz \
  -DLAYERPOOL_FUZZ=ON -DLAYERPOOL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target gguf_fuzz gguf_corpus

corpus=build-fuzz/corpus
mkdir -p "$corpus"
build-fuzz/tests/fuzz/gguf_corpus "$corpus"
echo "fuzz: GGUF reader for ${seconds}s over $(ls "$corpus" | wc -l) seed files"
build-fuzz/tests/fuzz/gguf_fuzz "$corpus" -max_total_time="$seconds" \
  -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix=build-fuzz/ 2>&1 | tail -n 15
echo "fuzz: no crash"
