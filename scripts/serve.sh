#!/usr/bin/env bash
# From a fresh Debian machine to a running herald: install, build, serve.
# Flags are passed to `herald serve` (see build/herald serve --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" build
"$root/scripts/build.sh"
exec "$root/build/herald" serve "$@"
