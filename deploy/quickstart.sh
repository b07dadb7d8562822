#!/usr/bin/env bash
# The README's first command: installs dependencies (Debian 12, apt-get),
# builds layerpool, and runs the main job on a small model.
#
# Today the main job is what exists: describing a model file. The multi-worker cluster comes with the next milestones; this
# script will start it as soon as it exists.
#
#   LAYERPOOL_SHARED=/path/to/shared   where real models are (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
cmake -G Ninja -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target layerpool
lp=build/cli/layerpool

shared="${LAYERPOOL_SHARED:-../shared}"
model="$shared/models/stories260K/stories260K-F32.gguf"
if [ ! -f "$model" ]; then
  echo "error: no model at $model (set LAYERPOOL_SHARED)" >&2
  exit 1
fi
echo "== layerpool inspect $model"
"$lp" inspect "$model"
