#!/usr/bin/env bash
# The benchmark, from a fresh Debian machine: installs what it needs (nginx, wrk, perf,
# PostgreSQL, Node.js and the build dependencies), builds herald and the bench tools, and runs
# bench/run.mjs, which writes bench/RESULTS.md: herald on SQLite, and on a throwaway durable
# PostgreSQL server of its own with one and two nodes (--no-postgres skips those). Arguments go
# to bench/run.mjs (--smoke for a seconds-long check).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" bench
"$root/scripts/build.sh"
exec node "$root/bench/run.mjs" "$@"
