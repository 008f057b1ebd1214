#!/usr/bin/env bash
# From a fresh Debian machine to a full test run: install, build, run every test
# (the C++ doctest suites and the Node conformance suite, all through ctest).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" test
"$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure --timeout 600 "$@"
