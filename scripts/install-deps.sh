#!/usr/bin/env bash
# Installs what herald needs on Debian (bookworm or later), skipping what is already there.
#   scripts/install-deps.sh build    compilers and the -dev libraries (default)
#   scripts/install-deps.sh test     build + Node.js, Chromium, PostgreSQL, Python, the bench tools and the npm
#                                    packages of the conformance and portal suites
#   scripts/install-deps.sh bench    build + nginx, wrk, perf, PostgreSQL and Node.js for
#                                    bench/run.sh
#   scripts/install-deps.sh runtime  only the shared libraries the herald binary links
set -euo pipefail
mode=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)

runtime_pkgs=(libcurl4 libsqlite3-0 libpq5 libssl3 libspdlog1.10 ca-certificates)
build_pkgs=(build-essential cmake ninja-build pkg-config git
  libcpp-httplib-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev libpq-dev
  libboost-dev nlohmann-json3-dev libspdlog-dev doctest-dev)
# The benchmark's receiver and load tools (the test suite runs the benchmark in smoke mode).
bench_pkgs=(nginx-light wrk sqlite3 curl)
# chromium: the portal's browser tests drive Debian's build (no browser is ever downloaded).
# postgresql: the tests start a throwaway server of their own (scripts/pg-test-server.sh).
# python3: docs/SIGNATURES.md's Python receivers are run against real deliveries.
test_pkgs=(sqlite3 curl openssl chromium fonts-dejavu-core postgresql python3 "${bench_pkgs[@]}")

case "$mode" in
  runtime) want=("${runtime_pkgs[@]}") ;;
  build) want=("${build_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}" postgresql linux-perf) ;;
  *) echo "install-deps: unknown mode '$mode' (build, test, bench or runtime)" >&2; exit 2 ;;
esac
# Node.js: the machine's own if it has one, else Debian's.
if { [ "$mode" = test ] || [ "$mode" = bench ]; } && ! command -v node >/dev/null 2>&1; then want+=(nodejs npm); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  # The npm packages of the conformance and portal suites, exactly as locked (playwright-core
  # downloads no browser when installed; the tests launch /usr/bin/chromium).
  for suite in conformance portal; do
    (cd "$root/tests/$suite" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  done
fi
