#!/usr/bin/env bash
# The test command (README, .ci/run): installs what a fresh Debian 12 machine
# lacks, builds everything with warnings as errors, runs the default test
# suite (every test not labelled `slow`; `gpu` tests skip without a GPU), then
# fuzzes the GGUF reader, the wire and LoadStage for a bounded time each.
#
#   LAYERPOOL_SHARED=/path/to/shared   models and golden data (default ../shared)
#   LAYERPOOL_FUZZ_SECONDS=60          fuzzing time (0 skips fuzzing)
#   LAYERPOOL_FUZZ_SEED=1              libFuzzer's seed (0: a fresh one each run)
#   LAYERPOOL_TEST_LABELS=slow         run only tests with this label instead
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
jobs=$(nproc)

cmake -G Ninja -S . -B build -DLAYERPOOL_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

if [ -n "${LAYERPOOL_TEST_LABELS:-}" ]; then
  ctest --test-dir build --output-on-failure -j"$jobs" -L "$LAYERPOOL_TEST_LABELS"
else
  ctest --test-dir build --output-on-failure -j"$jobs" -LE slow
fi

tests/fuzz/run.sh "${LAYERPOOL_FUZZ_SECONDS:-60}"
