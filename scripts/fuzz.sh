#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (into build-fuzz/) and runs each for a bounded
# time: scripts/fuzz.sh [seconds per target, default 60]. Seeds come from
# tests/fuzz/corpus/<target>/; new inputs that reach new code are kept in
# build-fuzz/corpus/<target>/; a crash leaves its input in build-fuzz/ and fails.
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" build
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ -n "${missing[*]:-}" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cd "$root"
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHERALD_FUZZ=ON
fi
targets=(fuzz_request_body fuzz_text_parsers fuzz_signature)
cmake --build build-fuzz --target "${targets[@]}"
for t in "${targets[@]}"; do
  echo "== $t for ${seconds}s"
  mkdir -p "build-fuzz/corpus/$t"
  (cd build-fuzz && "./tests/fuzz/$t" -max_total_time="$seconds" -max_len=65536 \
    -print_final_stats=1 "corpus/$t" "$root/tests/fuzz/corpus/$t")
done
