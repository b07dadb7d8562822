#!/usr/bin/env bash
# Fuzzes with libFuzzer (clang-14, ASan + UBSan) for a bounded time each:
# the GGUF reader, seeded with the hand-made valid and corrupt files of
# gguf_cases.cc, then what the network and model files bring (activation
# chunks into a worker, OpenAI request bodies, chat template sources, the
# sampling parameters of gRPC Generate requests driving a sampler;
# wire_fuzz.cc), seeded by wire_corpus.cc, and LoadStage requests into a
# worker's checks and stage loading (stage_load_fuzz.cc).
# Usage: tests/fuzz/run.sh [SECONDS]   (each; default 60; 0 skips)
# A crash leaves its input as build-fuzz/crash-* and fails the run.
#
# LAYERPOOL_FUZZ_SEED (default 1) fixes libFuzzer's seed, so two runs of the
# test command on one commit try the same inputs in the same order (how far
# they get depends on the machine's speed); 0 takes a fresh seed each run,
# to explore (run that for longer, e.g. 1200 s, after
# changing a parser, the sampler or the Jinja interpreter).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-60}"
seed="${LAYERPOOL_FUZZ_SEED:-1}"
if [ "$seconds" -le 0 ]; then
  echo "fuzz: skipped (0 seconds)"
  exit 0
fi

CC=clang-14 CXX=clang++-14 cmake -G Ninja -S . -B build-fuzz \
  -DLAYERPOOL_FUZZ=ON -DLAYERPOOL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target gguf_fuzz gguf_corpus wire_fuzz wire_corpus \
  stage_load_fuzz stage_load_corpus

# fuzz WHAT TARGET CORPUS_MAKER CORPUS MAX_LEN
fuzz() {
  mkdir -p "$4"
  "build-fuzz/tests/fuzz/$3" "$4"
  echo "fuzz: $1 for ${seconds}s over $(ls "$4" | wc -l) seed files (libFuzzer seed $seed)"
  "build-fuzz/tests/fuzz/$2" "$4" -seed="$seed" -max_total_time="$seconds" -max_len="$5" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build-fuzz/ 2>&1 | tail -n 15
}
fuzz "the GGUF reader" gguf_fuzz gguf_corpus build-fuzz/corpus 8192
fuzz "the wire (chunks, HTTP bodies, chat templates, Generate sampling)" wire_fuzz wire_corpus build-fuzz/wire-corpus 4096
fuzz "LoadStage requests" stage_load_fuzz stage_load_corpus build-fuzz/stage-load-corpus 1024
echo "fuzz: no crash"
