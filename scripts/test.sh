#!/usr/bin/env bash
# From a fresh Debian machine to a full test run: install, build, run every test (the C++
# doctest suites and the Node conformance suite, all through ctest), then build again with
# AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and run the whole suite there too.
# HERALD_SKIP_SANITIZE=1 skips the second pass (quicker local runs). Extra arguments go to ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" test
"$root/scripts/build.sh"
(cd "$root/build" && ctest --output-on-failure --timeout 600 "$@")
if [ "${HERALD_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== the same suite under AddressSanitizer and UndefinedBehaviorSanitizer"
  HERALD_BUILD_DIR=build-asan "$root/scripts/build.sh" -DHERALD_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd "$root/build-asan" && ctest --output-on-failure --timeout 900 "$@")
fi
