#!/usr/bin/env bash
# Installs every Debian package that gyre's build, tests and benchmark need.
# Idempotent: it asks dpkg first and only calls apt-get for what is missing,
# so the make targets can call it whenever a check fails.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config clang libclang-rt-14-dev   # compilers; clang for libFuzzer, its runtime for sanitizers
  libh2o-evloop-dev                                     # HTTP server and upstream client (h2o 2.2.5, own event loop)
  libssl-dev zlib1g-dev                                 # OpenSSL (TLS, h2o's own dependency), zlib (h2o)
  libyaml-dev libcjson-dev                              # configuration (YAML), JSON
  libsodium-dev                                         # provider keys encrypted at rest (secretbox), key hashing
  libsqlite3-dev libzstd-dev sqlite3                    # the trace store (SQLite), its body compression (zstd); the shell locks it in the overload test
  curl openssl                                          # make run's smoke check; test certificates
  wrk nginx-light                                       # benchmark: load generator and the reference proxy
  prometheus                                            # promtool: the /metrics test runs `promtool check metrics`
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js with npm runs the real SDK clients and the integration tests. The
# image may ship its own build of node (which bundles npm); only when either
# command is absent do we ask Debian for its packages.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
