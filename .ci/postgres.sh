#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a Unix socket (no TCP port), for the database test suites.
#   eval "$(.ci/postgres.sh start DIR)"   # prints: export TIERWISE_TEST_DATABASE_URL=...
#   .ci/postgres.sh stop DIR
# Installs Debian's postgresql when no server binaries are found. Postgres refuses to run as root:
# as root, the cluster belongs to the `postgres` user the package creates.
set -euo pipefail
action=$1
dir=$2

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
    bin=$(pg_bin)
    if [ -z "$bin" ]; then
        echo "installing postgresql (Debian package)" >&2
        apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
        bin=$(pg_bin)
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    chmod 700 "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U tierwise -N >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Unix socket only; fsync off: the data is thrown away after the run.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=300" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h "$dir" -U tierwise tierwise >&2
    echo "export TIERWISE_TEST_DATABASE_URL='postgresql://tierwise@/tierwise?host=$dir'"
    ;;
stop)
    bin=$(pg_bin)
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
