#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, on 127.0.0.1 with a temporary data folder.
#
#   scripts/pg-test-server.sh start DIR   installs PostgreSQL from Debian's packages when missing, runs initdb in
#                                         a folder of its own under /tmp, starts the server on a free port, creates the database
#                                         `pushbridge_test`, and writes its URL to DIR/url (and prints it)
#   scripts/pg-test-server.sh stop DIR    stops that server and removes DIR
#   scripts/pg-test-server.sh halt DIR    stops that server (fast shutdown: clients are disconnected), keeping its data
#   scripts/pg-test-server.sh resume DIR  starts it again on the same port and data
#   scripts/pg-test-server.sh restart DIR both at once (`pg_ctl restart -m fast`), as an operator restarts a database
#
# The server runs with fsync, synchronous_commit and full_page_writes off (throwaway data: a fast suite). With
# PG_DURABLE=1 in the environment, `start` keeps PostgreSQL's durable defaults instead (for benchmarks such as
# scripts/bench.sh's scaleout phase, which must measure what a production setup would see); max_connections is
# 200 either way.
#
# CI runs as root and PostgreSQL refuses to run as root, so the server runs as the `postgres` user (created by the
# Debian package) through runuser; as another user it runs as that user.
set -euo pipefail

cmd=${1:?usage: pg-test-server.sh start|stop DIR}
dir=${2:?usage: pg-test-server.sh start|stop DIR}

find_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/postgres" ] && { echo "$d"; return 0; }
    done
    return 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    if ! bin=$(find_bin); then
        echo "installing PostgreSQL (Debian's postgresql package) for the storage tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
        bin=$(find_bin)
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The cluster lives in a folder of its own under /tmp, which the server's user can reach whatever the
    # permissions of DIR's parents; DIR keeps its path.
    pgdir=$(mktemp -d /tmp/pushbridge-pg.XXXXXX)
    echo "$pgdir" >"$dir/pgdir"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        chown postgres "$pgdir"
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Throwaway data: durability off makes the suite fast (unless PG_DURABLE=1); max_connections covers two
    # bridges and the tests.
    settings="-c max_connections=200"
    if [ "${PG_DURABLE:-0}" != 1 ]; then
        settings="-c fsync=off -c synchronous_commit=off -c full_page_writes=off $settings"
    fi
    echo "-h 127.0.0.1 -p $port -k $pgdir $settings" >"$dir/options"
    as_owner "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 30 \
        -o "$(cat "$dir/options")" \
        start >&2 || { cat "$pgdir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres pushbridge_test
    url="postgres://postgres@127.0.0.1:$port/pushbridge_test"
    echo "$url" >"$dir/url"
    echo "$bin" >"$dir/bin"
    echo "$url"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    if [ -f "$dir/pgdir" ]; then
        pgdir=$(cat "$dir/pgdir")
        if [ -f "$dir/bin" ] && [ -d "$pgdir/data" ]; then
            as_owner "$(cat "$dir/bin")/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        case "$pgdir" in /tmp/pushbridge-pg.*) rm -rf "$pgdir" ;; esac
    fi
    rm -rf "$dir"
    ;;
halt | resume | restart)
    pgdir=$(cat "$dir/pgdir")
    bin=$(cat "$dir/bin")
    case "$cmd" in
    halt) as_owner "$bin/pg_ctl" -D "$pgdir/data" -m fast -w -t 30 stop >&2 ;;
    resume) as_owner "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 30 -o "$(cat "$dir/options")" start >&2 ;;
    restart) as_owner "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -m fast -w -t 30 -o "$(cat "$dir/options")" restart >&2 ;;
    esac
    ;;
*)
    echo "usage: pg-test-server.sh start|stop|halt|resume|restart DIR" >&2
    exit 2
    ;;
esac
