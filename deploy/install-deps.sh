#!/usr/bin/env bash
# Installs layerpool's build and test dependencies from Debian 12 packages.
# Does nothing (and needs no network) when they are all present already.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config python3
  libabsl-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcpp-httplib-dev libicu-dev
  clang-14 libclang-rt-14-dev   # libFuzzer for the GGUF reader fuzz target
  python3-grpcio python3-protobuf   # the proto-only client test
  python3-jinja2   # the oracle for the chat-template interpreter
  patchelf   # deploy/bundle.sh: RUNPATH $ORIGIN/../lib in the relocatable bundle
  curl   # the quickstart asks the HTTP API
  prometheus   # the HTTP test scrapes /metrics with a real Prometheus
  chromium   # the web page's browser test (driven by playwright-core from npm)
  iproute2   # the link-cut test puts each worker in a network namespace
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
# Node.js and npm run the official openai client in the HTTP test. Checked
# by command: a machine may have them from another package than Debian's.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# deploy/make-certs.sh (and the TLS test) run openssl.
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
