#!/usr/bin/env bash
# The benchmark, from a fresh Debian machine: installs what it needs (nginx, wrk, perf, Node.js
# and the build dependencies), builds herald and the bench tools, and runs bench/run.mjs, which
# writes bench/RESULTS.md. Arguments go to bench/run.mjs (--smoke for a seconds-long check).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" bench
"$root/scripts/build.sh"
exec node "$root/bench/run.mjs" "$@"
