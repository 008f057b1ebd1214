#!/usr/bin/env bash
# Two herald builds on SQLite in the same conditions, alternating (A, B, A, B, ...): each run
# is a fresh herald on a new SQLite file, 10 endpoints on an nginx answering 204, and
# herald_loadgen at full speed; deliveries/s are counted from /metrics after a 3 s warm-up.
# The machine changes between reports; this compares code with code.
#   bench/compare.sh A_HERALD B_HERALD [RUNS (3)] [SECONDS (15)] [CONNECTIONS (8)]
# Prints one line per run and the median of each build. Needs nginx, curl and a built
# build/bench/herald_loadgen (bench/run.sh installs and builds them). Listens on 127.0.0.1
# ports 18980 (nginx) and 18981 (herald).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: bench/compare.sh A_HERALD B_HERALD [RUNS] [SECONDS] [CONNECTIONS]" >&2; exit 2; }
a=$1 b=$2 runs=${3:-3} secs=${4:-15} conns=${5:-8}
loadgen=${HERALD_LOADGEN:-$root/build/bench/herald_loadgen}
for bin in "$a" "$b" "$loadgen"; do
  [ -x "$bin" ] || { echo "compare.sh: not an executable: $bin" >&2; exit 2; }
done
token=compare-token-0123456789
url=http://127.0.0.1:18981

one_run() {  # prints deliveries/s of one run of herald binary $1
  local dir ng hp app s0 s1
  dir=$(mktemp -d "${TMPDIR:-/tmp}/herald-compare-XXXXXX")
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process off; error_log $dir/error.log warn;
pid $dir/nginx.pid; events { worker_connections 8192; }
http { access_log off; client_body_temp_path $dir/tmp; keepalive_requests 10000000;
  keepalive_timeout 300s;
  server { listen 127.0.0.1:18980 backlog=8192; location / { return 204; } } }
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" & ng=$!
  HERALD_ADMIN_TOKEN=$token HERALD_ALLOW_PRIVATE_CIDRS=127.0.0.0/8 \
    HERALD_MASTER_KEY_FILE="$dir/herald.key" \
    "$1" serve --listen 127.0.0.1:18981 --db "$dir/herald.db" >"$dir/herald.log" 2>&1 & hp=$!
  until curl -sf "$url/api/v1/health"; do sleep 0.1; done
  local auth="Authorization: Bearer $token" json='Content-Type: application/json'
  app=$(curl -sf -H "$auth" -H "$json" -d '{"name":"compare"}' "$url/api/v1/app" |
    sed 's/.*"id":"\([^"]*\)".*/\1/')
  for e in $(seq 0 9); do
    curl -sf -o /dev/null -H "$auth" -H "$json" \
      -d "{\"url\":\"http://127.0.0.1:18980/ep$e\"}" "$url/api/v1/app/$app/endpoint"
  done
  successes() {
    curl -s "$url/metrics" | awk '/^herald_attempts_total\{outcome="success"\}/{printf "%d", $2}'
  }
  "$loadgen" publish --url "$url" --token "$token" --app "$app" --duration "$secs" \
    --connections "$conns" >"$dir/loadgen.log" 2>&1 &
  local lp=$!
  sleep 3
  s0=$(successes)
  wait "$lp"
  s1=$(successes)
  kill "$hp" "$ng"
  wait "$hp" "$ng" 2>/dev/null || true
  rm -rf "$dir"
  echo $(((s1 - s0) / (secs - 3)))
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}'; }
ra=() rb=()
for i in $(seq 1 "$runs"); do
  ra+=("$(one_run "$a")"); echo "run $i  A ${ra[-1]} deliveries/s"
  rb+=("$(one_run "$b")"); echo "run $i  B ${rb[-1]} deliveries/s"
done
echo "median A $(printf '%s\n' "${ra[@]}" | median)  B $(printf '%s\n' "${rb[@]}" | median) deliveries/s ($conns connections, $secs s, $runs runs each)"
