#!/usr/bin/env bash
# Packs built binaries, with every shared library they need beyond a minimal
# base system, into one relocatable folder and a .tar.gz: copy it to any
# x86-64 Linux machine with glibc and libstdc++ as new as this one's and run
# NAME/bin/layerpool, without installing gRPC, protobuf or Abseil there.
#
#   deploy/bundle.sh [--build-dir DIR] [--out DIR] [--name NAME] [BINARY...]
#
# How a bundled binary finds its libraries: the real ELF sits in bin/ with its
# RUNPATH rewritten by patchelf to $ORIGIN/../lib, and each copied library
# that needs another copied one gets RUNPATH $ORIGIN. We chose this over a
# wrapper script exporting LD_LIBRARY_PATH because:
#   - LD_LIBRARY_PATH is inherited by every child process, so a worker that
#     starts ssh, nvidia-smi or python would hand them our libssl, libz or
#     ICU instead of the system's, with symbol errors on newer systems;
#   - bin/layerpool stays the program itself: ldd, gdb, perf, /proc/PID/exe
#     and systemd units see the real binary, and argv[0] is unchanged.
# RUNPATH (unlike the older RPATH) applies only to the object's own direct
# dependencies, hence the $ORIGIN on the libraries too. patchelf is a Debian
# package, installed by deploy/install-deps.sh.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/bundle.sh [--build-dir DIR] [--out DIR] [--name NAME] [BINARY...]

Copies BINARY... (default: the layerpool CLI, BUILD/cli/layerpool) and every
shared library they load, except the base system (glibc, libstdc++, libgcc_s,
the NVIDIA driver's libcuda), into OUT/NAME:

  NAME/bin/<binary>   the program, RUNPATH $ORIGIN/../lib
  NAME/lib/           the libraries, each under the soname asked for
  NAME/README         what it is, how to run it, what the system must have

then checks that a copy of it elsewhere runs with an empty environment, and
writes OUT/NAME.tar.gz.

  --build-dir DIR  the build tree (default: build, in the repository)
  --out DIR        where NAME and NAME.tar.gz go (default: out/bundle, in the
                   repository); an existing OUT/NAME is replaced
  --name NAME      the folder's name (default: layerpool)
  BINARY           a path, or one relative to the build tree
                   (bench/engine_bench, kernels/kernels_bench)

Needs ldd, readelf and patchelf (deploy/install-deps.sh installs them).
EOF
}

log() { echo "bundle: $*"; }
die() { echo "bundle: error: $*" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$repo/build"
out_dir="$repo/out/bundle"
name=layerpool
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --build-dir|--out|--name)
      [ $# -ge 2 ] || die "$1 needs a value (--help for usage)"
      case "$1" in
        --build-dir) build_dir="$2" ;;
        --out) out_dir="$2" ;;
        --name) name="$2" ;;
      esac
      shift 2 ;;
    --build-dir=*) build_dir="${1#*=}"; shift ;;
    --out=*) out_dir="${1#*=}"; shift ;;
    --name=*) name="${1#*=}"; shift ;;
    --) shift; args+=("$@"); break ;;
    -*) die "unknown flag $1 (--help for usage)" ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$name" in
  ''|.|..|*/*) die "--name must be a plain folder name, not '$name'" ;;
esac
for tool in ldd readelf patchelf tar gzip; do
  command -v "$tool" >/dev/null ||
    die "$tool not found (deploy/install-deps.sh installs it; patchelf is Debian's 'patchelf')"
done
[ ${#args[@]} -gt 0 ] || args=("$build_dir/cli/layerpool")

# The base system a target is assumed to have. glibc and the GCC runtime are
# on every Linux system and must match its loader; libcuda (and the rest of
# libnvidia-*) belong to the kernel driver and must come from the target's.
is_base() {
  case "$1" in
    linux-vdso.so.*|linux-gate.so.*|ld-linux*.so.*|ld64.so.*) return 0 ;;
    libc.so.*|libm.so.*|libmvec.so.*|libpthread.so.*|libdl.so.*|librt.so.*) return 0 ;;
    libresolv.so.*|libutil.so.*|libanl.so.*|libnss_*.so.*|libthread_db.so.*) return 0 ;;
    libstdc++.so.*|libgcc_s.so.*) return 0 ;;
    libcuda.so*|libnvidia-*.so*) return 0 ;;
  esac
  return 1
}

interp_of() {  # the loader a binary asks for; none when statically linked
  readelf -l "$1" 2>/dev/null |
    sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p'
}

# --- the binaries -----------------------------------------------------------
loader=""
bin_paths=()
bin_names=()
declare -A bin_seen=()
for a in "${args[@]}"; do
  if [ -f "$a" ]; then p="$a"
  elif [ -f "$build_dir/$a" ]; then p="$build_dir/$a"
  else die "no binary $a (nor $build_dir/$a); build it first"
  fi
  readelf -h "$p" >/dev/null 2>&1 || die "$p is not an ELF file"
  interp=$(interp_of "$p")
  [ -n "$interp" ] || die "$p is statically linked: copy it as it is"
  [ -n "$loader" ] || loader="$interp"
  b=$(basename "$p")
  [ -z "${bin_seen[$b]:-}" ] || die "two binaries named $b"
  bin_seen[$b]=1
  bin_paths+=("$(cd "$(dirname "$p")" && pwd)/$b")
  bin_names+=("$b")
done

# --- which libraries: ldd of every binary, then of every library found ------
# ldd of a binary already lists the whole closure the loader sees; walking
# each library found too also covers one that a library's own RUNPATH finds.
# ldd is a shell script that runs the loader with LD_TRACE_LOADED_OBJECTS=1;
# doing that directly gives the same listing at a fraction of the cost, which
# matters for the fifty-odd libraries of a gRPC build. Forks are kept out of
# the loops for the same reason.
list_deps() {  # ldd's listing of ELF $1
  if [ -x "$loader" ]; then LD_TRACE_LOADED_OBJECTS=1 "$loader" "$1"; else ldd "$1"; fi
}

declare -A lib_src=()      # soname -> path on this machine
declare -A lib_of_path=()  # that path -> soname
declare -A needs_runpath=() # soname -> 1 when it loads another bundled library
declare -A base_used=()    # base sonames the bundle expects from the system
queue=("${bin_paths[@]}")
i=0
while [ "$i" -lt ${#queue[@]} ]; do
  f="${queue[$i]}"; i=$((i + 1))
  listing=$(list_deps "$f" 2>&1) || die "ldd $f failed: $listing"
  while read -r soname arrow path _; do
    if [ "$arrow" != "=>" ]; then
      # linux-vdso (no file) and the loader, listed by its path.
      case "$soname" in /*) base_used[${soname##*/}]=1 ;; esac
      continue
    fi
    # A base library may be missing here: libcuda on a build machine with
    # no NVIDIA driver.
    if is_base "$soname"; then base_used[$soname]=1; continue; fi
    [ "$path" != not ] || die "$f needs $soname, which is not found on this machine"
    # Base libraries load only base libraries, so a library whose closure
    # holds a non-base one needs it directly: it gets RUNPATH $ORIGIN.
    if [ -n "${lib_of_path[$f]:-}" ]; then needs_runpath[${lib_of_path[$f]}]=1; fi
    [ -z "${lib_src[$soname]:-}" ] || continue
    lib_src[$soname]="$path"
    lib_of_path[$path]="$soname"
    queue+=("$path")
  done <<<"$listing"
done
sonames=()
if [ ${#lib_src[@]} -gt 0 ]; then
  mapfile -t sonames < <(printf '%s\n' "${!lib_src[@]}" | sort)
fi
declare -A lib_real=()     # soname -> the file behind the symlinks
if [ ${#sonames[@]} -gt 0 ]; then
  srcs=()
  for s in "${sonames[@]}"; do srcs+=("${lib_src[$s]}"); done
  mapfile -t reals < <(readlink -f "${srcs[@]}")
  for j in "${!sonames[@]}"; do lib_real[${sonames[$j]}]="${reals[$j]}"; done
fi

# --- the folder ---------------------------------------------------------------
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
dest="$out_dir/$name"
rm -rf "$dest" "$out_dir/$name.tar.gz"
mkdir -p "$dest/bin" "$dest/lib"
log "bundling ${#bin_paths[@]} binaries and ${#sonames[@]} libraries into $dest"

for p in "${bin_paths[@]}"; do
  b="${p##*/}"
  log "  bin/$b  <- $p"
  cp -L "$p" "$dest/bin/$b"
done
chmod 0755 "$dest"/bin/*
# shellcheck disable=SC2016  # $ORIGIN is the loader's, not the shell's
patchelf --set-rpath '$ORIGIN/../lib' "$dest"/bin/*

patch=()
for s in "${sonames[@]}"; do
  log "  lib/$s  <- ${lib_real[$s]}"
  cp "${lib_real[$s]}" "$dest/lib/$s"   # the real file, under the soname asked for
  if [ -n "${needs_runpath[$s]:-}" ]; then patch+=("$dest/lib/$s"); fi
done
if [ ${#sonames[@]} -gt 0 ]; then chmod 0644 "$dest"/lib/*; fi
# Leaf libraries (libicudata, libz, ...) stay byte for byte as shipped.
if [ ${#patch[@]} -gt 0 ]; then
  # shellcheck disable=SC2016
  patchelf --set-rpath '$ORIGIN' "${patch[@]}"
fi

# --- README -------------------------------------------------------------------
# The symbol versions the bundle asks of the base libraries, newest last.
mapfile -t elves < <(find "$dest/bin" "$dest/lib" -type f | sort)
versions=$(readelf -V --wide "${elves[@]}" 2>/dev/null |
  grep -oE 'Name: GLIBC(XX)?_[0-9.]+' | sed 's/^Name: //' | sort -uV)
glibc_need=$(grep '^GLIBC_' <<<"$versions" | tail -n 1 || true)
glibcxx_need=$(grep '^GLIBCXX_' <<<"$versions" | tail -n 1 || true)
host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)
# The CUDA runtime, linked statically or bundled, loads libcuda.so.1 (the
# driver's) with dlopen, so only its name in the files tells.
cuda=""
if grep -qa 'libcuda\.so' "${elves[@]}"; then cuda=yes; fi
cuda_version=$(sed -n 's/^set(CMAKE_CUDA_COMPILER_VERSION "\(.*\)")$/\1/p' \
  "$build_dir"/CMakeFiles/*/CMakeCUDACompiler.cmake 2>/dev/null | head -n 1 || true)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)

{
  echo "$name: layerpool with its libraries, relocatable"
  echo
  echo "Built $(date -u +%Y-%m-%d) on $(uname -m) ($host_glibc) from commit $commit."
  echo "Programs in bin/: ${bin_names[*]}"
  echo
  echo "Run"
  echo
  echo "  Copy or unpack this folder anywhere (tar -xzf $name.tar.gz -C /opt) and"
  echo "  run the programs in bin/ directly; nothing to install or set:"
  echo
  if [ -f "$dest/bin/layerpool" ]; then
    echo "    $name/bin/layerpool --help"
    echo "    $name/bin/layerpool inspect model.gguf"
    echo "    $name/bin/layerpool worker --listen 0.0.0.0:50051"
  fi
  for b in "${bin_names[@]}"; do
    [ "$b" = layerpool ] || echo "    $name/bin/$b --help"
  done
  echo
  echo "  Each program in bin/ is the real binary with RUNPATH \$ORIGIN/../lib, so"
  echo "  it finds lib/ wherever the folder is; no LD_LIBRARY_PATH is used, and"
  echo "  the folder may be moved or renamed. To check a machine: every library"
  echo "  but the system's ones below should come from lib/ in"
  echo
  echo "    ldd $name/bin/${bin_names[0]}"
  echo
  echo "What the system must provide"
  echo
  echo "  - glibc ${glibc_need#GLIBC_} or newer (the newest symbol version used;"
  echo "    built with $host_glibc)"
  if [ -n "$glibcxx_need" ]; then
    echo "  - libstdc++ with $glibcxx_need (GCC 12's or newer) and libgcc_s"
  fi
  if [ -n "$cuda" ]; then
    echo "  - the NVIDIA driver's libcuda.so.1, new enough for CUDA ${cuda_version:-as built},"
    if [ -n "${base_used[libcuda.so.1]:-}" ]; then
      echo "    which the programs load at start"
    else
      echo "    which the CUDA runtime loads when the CUDA backend starts"
    fi
  fi
  echo "  - these libraries, loaded from the system:"
  if [ ${#base_used[@]} -gt 0 ]; then
    printf '%s\n' "${!base_used[@]}" | sort | sed 's/^/      /'
  fi
  echo
  echo "Bundled libraries (lib/), each copied from"
  for s in "${sonames[@]}"; do
    echo "  $s  <- ${lib_real[$s]}"
  done
} >"$dest/README"

# --- verification: a copy elsewhere, an empty environment -----------------------
check=$(mktemp -d "${TMPDIR:-/tmp}/layerpool-bundle-check.XXXXXX")
trap 'rm -rf "$check"' EXIT
cp -a "$dest" "$check/moved"
moved_lib=$(cd "$check/moved/lib" && pwd -P)
bad=0

# Every non-base library in the listing $2 of ELF $1 must resolve to a file
# in the moved lib/.
check_resolution() {
  local soname arrow path _ j
  local names=() paths=() reals=()
  while read -r soname arrow path _; do
    if [ "$arrow" != "=>" ] || is_base "$soname"; then continue; fi
    if [ "$path" = not ]; then
      echo "bundle: FAIL: $1: $soname not found" >&2; bad=1
    else
      names+=("$soname"); paths+=("$path")
    fi
  done <<<"$2"
  [ ${#paths[@]} -gt 0 ] || return 0
  mapfile -t reals < <(readlink -f "${paths[@]}")
  for j in "${!paths[@]}"; do
    if [ "${reals[$j]%/*}" != "$moved_lib" ]; then
      echo "bundle: FAIL: $1: ${names[$j]} resolves to ${paths[$j]}, outside the bundle" >&2
      bad=1
    fi
  done
}

for b in "$check/moved/bin"/*; do
  if listing=$(env -i PATH=/usr/bin:/bin ldd "$b" 2>&1); then
    check_resolution "$b" "$listing"
  else
    echo "bundle: FAIL: ldd $b: $listing" >&2; bad=1
  fi
  # A program that links libcuda itself cannot start on a build machine
  # without the NVIDIA driver; ldd above is all that can be checked here.
  absent=$(sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p' <<<"$listing" | tr '\n' ' ')
  if [ -n "$absent" ]; then
    log "note: not running ${b##*/} --help: it needs ${absent% }, which this machine lacks"
    continue
  fi
  rc=0
  output=$(cd "$check" &&
    timeout 60 env -i PATH=/usr/bin:/bin "$b" --help </dev/null 2>&1) || rc=$?
  # A --help that exits 1 (absl flags do) still proves the program loaded;
  # the loader's own failures exit 127, crashes 128 and above, timeout 124.
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 127 ] || [ "$rc" -ge 128 ] ||
     grep -qE 'error while loading shared libraries|symbol lookup error|version .* not found' \
       <<<"$output"; then
    echo "bundle: FAIL: ${b##*/} --help from a moved copy exited $rc:" >&2
    head -n 5 <<<"$output" >&2
    bad=1
  fi
done
# The libraries on their own too, as a dlopen of one would load them.
for l in "$check/moved/lib"/*; do
  [ -f "$l" ] || continue
  if listing=$(env -i PATH=/usr/bin:/bin LD_TRACE_LOADED_OBJECTS=1 "$loader" "$l" 2>&1); then
    check_resolution "$l" "$listing"
  else
    echo "bundle: FAIL: ldd $l: $listing" >&2; bad=1
  fi
done
if [ "$bad" -ne 0 ]; then
  die "verification failed; the bundle is left in $dest for inspection"
fi
log "verified: a moved copy runs with an empty environment, every non-base library from its lib/"

# --- tarball and summary -----------------------------------------------------------
tar -C "$out_dir" --owner=0 --group=0 --numeric-owner -czf "$out_dir/$name.tar.gz" "$name"
n_files=$(find "$dest" -type f | wc -l)
bytes=$(du -sb "$dest" | cut -f1)
tar_bytes=$(stat -c %s "$out_dir/$name.tar.gz")
human() { numfmt --to=iec-i --suffix=B --format=%.1f "$1"; }
log "$dest: binaries ${#bin_paths[@]}, libraries ${#sonames[@]}, files $n_files, $(human "$bytes")"
log "needs from the system: ${glibc_need:-no glibc symbols}${glibcxx_need:+, $glibcxx_need}${cuda:+, the NVIDIA driver (libcuda.so.1)}"
log "tarball: $out_dir/$name.tar.gz ($(human "$tar_bytes"))"
