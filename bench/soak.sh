#!/usr/bin/env bash
# The soak, from a fresh Debian machine: installs what it needs and builds as bench/run.sh does,
# then runs bench/soak.mjs: herald on SQLite for 30 minutes (--minutes) at half its sustained
# rate with one endpoint in ten failing and one slow, recording RSS, open descriptors, database
# size and deliveries/s every minute into bench/RESULTS-soak.md (and bench/RESULTS.md's soak
# section). Arguments go to bench/soak.mjs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" bench
"$root/scripts/build.sh"
exec node "$root/bench/soak.mjs" "$@"
