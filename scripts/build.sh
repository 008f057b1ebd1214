#!/usr/bin/env bash
# Configures and builds herald into build/ (build/herald), or into $HERALD_BUILD_DIR.
# Extra arguments go to cmake's first configure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${HERALD_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_WERROR=ON "$@"
fi
cmake --build "$dir" --parallel "$(nproc)"
