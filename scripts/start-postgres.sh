#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the LSP's tests; idempotent.
#   PGDATA_DIR (default /tmp/lab-pg)   cluster directory
#   PGPORT     (default 55432)          listens on 127.0.0.1 only
# Prints the database URL (database lsp_test) on stdout, e.g.
#   export LSP_TEST_POSTGRES_URL=$(scripts/start-postgres.sh)
# Stop it with: pg_ctl -D "$PGDATA_DIR" stop   (as the postgres user when run as root)
set -euo pipefail

PGDATA_DIR="${PGDATA_DIR:-/tmp/lab-pg}"
PGPORT="${PGPORT:-55432}"
DB=lsp_test

find_bin() {
    local name=$1 dir
    for dir in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
        if [[ -x "$dir/$name" ]]; then echo "$dir/$name"; return 0; fi
    done
    command -v "$name" || { echo "error: $name not found; install PostgreSQL (apt-get install -y postgresql)" >&2; exit 1; }
}
INITDB=$(find_bin initdb)
PG_CTL=$(find_bin pg_ctl)
PSQL=$(find_bin psql)

# PostgreSQL refuses to run as root: run its tools as the postgres user then.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
PGUSER_NAME=$([[ $(id -u) -eq 0 ]] && echo postgres || id -un)

mkdir -p "$PGDATA_DIR"
[[ $(id -u) -eq 0 ]] && { id postgres >/dev/null 2>&1 || useradd --system --shell /bin/bash postgres; chown postgres "$PGDATA_DIR"; }

if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    as_pg "$INITDB" -D "$PGDATA_DIR" -U "$PGUSER_NAME" --auth=trust --encoding=UTF8 --no-locale >/dev/null
fi

if ! as_pg "$PG_CTL" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    as_pg "$PG_CTL" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
fi

PSQL_ARGS=(-h 127.0.0.1 -p "$PGPORT" -U "$PGUSER_NAME" -d postgres -v ON_ERROR_STOP=1 -qtA)
if [[ -z $(as_pg "$PSQL" "${PSQL_ARGS[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$DB'") ]]; then
    as_pg "$PSQL" "${PSQL_ARGS[@]}" -c "CREATE DATABASE $DB" >/dev/null
fi

echo "postgresql+psycopg://$PGUSER_NAME@127.0.0.1:$PGPORT/$DB"
