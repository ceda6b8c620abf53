#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for tests.
#
#   url="$(bash .ci/postgres.sh start DIR)"   # DIR: a new or empty folder (created if missing)
#   bash .ci/postgres.sh stop DIR             # stops the server and deletes DIR
#
# `start` runs initdb in DIR/data, starts the server on a free port, creates the database
# `deskgate` and prints its URL (postgresql+psycopg://deskgate@127.0.0.1:PORT/deskgate) on
# stdout; progress goes to stderr, the server log to DIR/postgres.log. The `deskgate` role is
# a superuser (tests create databases) and loopback connections are trusted: never use this
# for anything but tests. Durability is off (fsync=off) for speed.
# As root, the server runs as the `postgres` user (or a `deskgate-ci` system user created on
# the fly), since PostgreSQL refuses to run as root.
# `stop` is idempotent and only deletes a folder that `start` marked as its own.
set -euo pipefail

MARKER=".deskgate-ci-postgres"
DB_USER="deskgate"
DB_NAME="deskgate"

log() { printf '[postgres.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

pg_bindir() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$dir" && -x "$dir/initdb" ]] || die "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
  echo "$dir"
}

run_user() {
  if [[ "$(id -u)" != 0 ]]; then id -un; return; fi
  if id -u postgres >/dev/null 2>&1; then echo postgres; return; fi
  if ! id -u deskgate-ci >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin deskgate-ci
  fi
  echo deskgate-ci
}

# as USER CMD...: run CMD as USER (directly when that is us).
as() {
  local user="$1"; shift
  if [[ "$(id -un)" == "$user" ]]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

free_port() {
  local py
  for py in python3 python; do
    if command -v "$py" >/dev/null 2>&1; then
      "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
      return
    fi
  done
  echo $(( (RANDOM % 20000) + 30000 ))
}

cmd_start() {
  local dir="${1:?usage: postgres.sh start DIR}"
  local bin user port attempt
  bin="$(pg_bindir)"
  user="$(run_user)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
  touch "$dir/$MARKER"
  chown "$user" "$dir"
  chmod 0700 "$dir"
  cd "$dir"  # initdb/pg_ctl run as another user, who may not be able to read our cwd
  # The server user must be able to reach DIR (e.g. not inside root's 0700 home).
  as "$user" test -w "$dir" || die "user $user cannot write to $dir: use a folder under /tmp"

  log "initdb in $dir/data (as $user)"
  as "$user" "$bin/initdb" --pgdata="$dir/data" --username="$DB_USER" --auth=trust \
    --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  cat >>"$dir/data/postgresql.conf" <<EOF

# deskgate test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    if as "$user" "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/postgres.log" \
        --options="-p $port" --wait --timeout=60 start >/dev/null; then
      echo "$port" >"$dir/port"
      break
    fi
    if [[ "$attempt" == 5 ]] || ! grep -q "could not bind\|already in use" "$dir/postgres.log"; then
      tail -n 30 "$dir/postgres.log" >&2 || true
      die "the server did not start"
    fi
    log "port $port was taken, retrying"
  done

  "$bin/createdb" --host=127.0.0.1 --port="$port" --username="$DB_USER" "$DB_NAME"
  local url="postgresql+psycopg://$DB_USER@127.0.0.1:$port/$DB_NAME"
  echo "$url" >"$dir/url"
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') ready: $url"
  echo "$url"
}

cmd_stop() {
  local dir="${1:?usage: postgres.sh stop DIR}"
  [[ -d "$dir" ]] || return 0
  [[ -e "$dir/$MARKER" ]] || die "$dir was not made by postgres.sh start; not touching it"
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    local bin owner
    bin="$(pg_bindir)"
    owner="$(stat -c %U "$dir/data")"
    as "$owner" "$bin/pg_ctl" --pgdata="$dir/data" --mode=immediate --wait --timeout=30 stop >/dev/null 2>&1 \
      || log "pg_ctl stop failed (server already gone?)"
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) echo "usage: $0 start DIR | stop DIR" >&2; exit 2 ;;
esac
