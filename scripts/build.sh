#!/usr/bin/env bash
# Configures and builds herald into build/ (build/herald). Extra arguments go to cmake.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_WERROR=ON "$@"
fi
cmake --build build --parallel "$(nproc)"
