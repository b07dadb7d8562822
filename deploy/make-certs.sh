#!/usr/bin/env bash
# Makes a home lab's TLS material for `--tls-dir` (mutual TLS on the Worker
# API): one CA, then for each name a folder with ca.pem, cert.pem and key.pem,
# the certificate signed by the CA for that name and usable as server and as
# client (the coordinator uses one too).
#
#   deploy/make-certs.sh OUT_DIR NAME[=ADDRESS,...] ...
#
# NAME is the folder (and the certificate's common name); the addresses after
# '=' are what the others dial it by (IPs or DNS names), e.g.
#   deploy/make-certs.sh lab-certs gpu1=10.0.0.11 gpu2=10.0.0.12,gpu2.lan coordinator
# Copy OUT_DIR/NAME to that machine (keep key.pem private) and start it with
# --tls-dir. OUT_DIR/ca.key signs new ones later: keep it offline. Uses only
# openssl. Names without addresses get 127.0.0.1 and localhost.
set -euo pipefail
out="${1:?usage: make-certs.sh OUT_DIR NAME[=ADDRESS,...] ...}"
shift
[[ $# -gt 0 ]] || { echo "usage: make-certs.sh OUT_DIR NAME[=ADDRESS,...] ..." >&2; exit 2; }
mkdir -p "$out"
umask 077
if [[ ! -f $out/ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=layerpool home-lab CA" -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null
  echo "made the CA: $out/ca.pem (key $out/ca.key)"
fi
for spec in "$@"; do
  name=${spec%%=*}
  addresses=${spec#*=}
  [[ $spec == *=* ]] || addresses="127.0.0.1,localhost"
  san=""
  IFS=',' read -ra list <<<"$addresses"
  for a in "${list[@]}"; do
    if [[ $a =~ ^[0-9.]+$ || $a == *:* ]]; then san+="${san:+,}IP:$a"; else san+="${san:+,}DNS:$a"; fi
  done
  dir="$out/$name"
  mkdir -p "$dir"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$dir/key.pem" -out "$dir/req.csr" 2>/dev/null
  openssl x509 -req -in "$dir/req.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
    -CAcreateserial -days 825 -out "$dir/cert.pem" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san") \
    2>/dev/null
  rm -f "$dir/req.csr"
  cp "$out/ca.pem" "$dir/ca.pem"
  echo "made $dir ($san)"
done
