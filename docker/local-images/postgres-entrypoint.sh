#!/bin/bash
# The official postgres image's contract, for the stand-in: on an empty data directory,
# initdb with POSTGRES_USER (default postgres) and POSTGRES_PASSWORD (required), create
# POSTGRES_DB (default: the user's name), accept password (scram) logins from the network;
# a data directory that holds a cluster is started as it is.
set -euo pipefail

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?the database is uninitialised and POSTGRES_PASSWORD is not set}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >&2
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        # A server on the socket only while the database is made: nobody connects early.
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >&2
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            -c "CREATE DATABASE \"$db\"" >&2
        pg_ctl -D "$PGDATA" -m fast -w stop >&2
    fi
fi

exec postgres -D "$PGDATA" "$@"
