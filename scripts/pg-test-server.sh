#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite: Debian's postgresql, a data directory of
# its own, a Unix socket only (no TCP), fsync off. As root it runs as the postgres user
# (initdb refuses root).
# HERALD_PG_DURABLE=1 at start leaves fsync, full_page_writes and synchronous_commit at
# PostgreSQL's defaults (all on: every commit waits for its WAL to reach the disk), as the
# benchmark needs for a fair comparison with SQLite; without it they are as below (fsync off).
#   scripts/pg-test-server.sh start DIR    creates DIR (removing what was there) and starts the
#                                          server; prints its URI
#   scripts/pg-test-server.sh uri DIR      prints the URI of the server in DIR
#   scripts/pg-test-server.sh restart DIR  restarts it (fast shutdown: clients are cut off)
#   scripts/pg-test-server.sh stop DIR     stops it and removes DIR
set -euo pipefail
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: pg-test-server.sh start|uri|restart|stop DIR" >&2
  exit 2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "pg-test-server: PostgreSQL's server is not installed (scripts/install-deps.sh test installs it)" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  owner=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  owner=$(id -un)
  as_owner() { "$@"; }
fi
uri() { echo "postgresql:///postgres?host=$dir&port=5432&user=$owner"; }
ctl() { as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 "$@" >/dev/null; }

case "$cmd" in
  start)
    if [ -f "$dir/data/postmaster.pid" ]; then ctl stop -m immediate || true; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chown "$owner" "$dir"
    chmod 700 "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U "$owner" --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    if [ "${HERALD_PG_DURABLE:-0}" = 1 ]; then
      durability="# durable (HERALD_PG_DURABLE=1): fsync, full_page_writes, synchronous_commit as default"
    else
      durability=$'fsync = off\nfull_page_writes = off\nsynchronous_commit = on'
    fi
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
$durability
max_connections = 300
shared_buffers = 128MB
log_min_messages = warning
CONF
    ctl start || { cat "$dir/server.log" >&2; exit 1; }
    uri
    ;;
  uri) uri ;;
  restart) ctl restart -m fast ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then ctl stop -m immediate || true; fi
    rm -rf "$dir"
    ;;
  *)
    echo "pg-test-server: unknown command '$cmd' (start, uri, restart or stop)" >&2
    exit 2
    ;;
esac
