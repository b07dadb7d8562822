# Sourced by the make_golden.sh scripts after they set `here` (their own
# folder): reads LLAMA_CPP_DIR (a CPU build someone made) and, when the
# script sets needs_build=1 first, LAYERPOOL_BUILD_DIR from the arguments;
# sets llama, build, shared (../shared or $LAYERPOOL_SHARED) and commit
# (llama.cpp's, for the golden file).
usage="usage: make_golden.sh LLAMA_CPP_DIR${needs_build:+ LAYERPOOL_BUILD_DIR}"
llama="${1:?$usage}"
if [[ -n ${needs_build:-} ]]; then build="${2:?$usage}"; fi
shared="${LAYERPOOL_SHARED:-$here/../../../shared}"
commit=$(git -C "$llama" rev-parse HEAD 2>/dev/null || cat "$llama/COMMIT")
