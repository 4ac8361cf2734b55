#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests marked `postgres`.
#
#   .ci/postgres.sh start     # (default) start one, or reuse the one already running;
#                             # writes .ci/pg.env and prints `export MOTE_OPTUNA_TEST_PG=...`
#   .ci/postgres.sh stop      # stop it and delete its folder and .ci/pg.env
#   .ci/postgres.sh status    # exit 0 when the cluster in .ci/pg.env is running
#   .ci/postgres.sh env       # print the export lines of the running cluster
#
# Use from another script:   .ci/postgres.sh start >/dev/null && source .ci/pg.env
# or source it directly:     source .ci/postgres.sh start   (exports MOTE_OPTUNA_TEST_PG)
#
# The cluster lives in a fresh `mktemp -d` folder (data, log, unix socket), listens on
# 127.0.0.1 on a free port, accepts password (scram-sha-256) logins over TCP, and has a
# database `mote_test` owned by user `mote` with a random password. As root the server runs as
# the system user `mote` (created with useradd when missing); otherwise as the current user.
# Settings favour speed over durability (fsync off): it is for tests only.
# Environment: PG_BIN (folder with initdb/pg_ctl; default: newest /usr/lib/postgresql/*/bin,
# preferring 15), MOTE_PG_PORT (default: a free port), MOTE_PG_TMPDIR (parent of the folder).

_mote_pg_main() {
    set -euo pipefail
    local cmd="${1:-start}"
    local here root env_file
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    root="$(dirname "$here")"
    env_file="$here/pg.env"

    _log() { echo "postgres.sh: $*" >&2; }
    _die() { _log "error: $*"; exit 1; }

    _pg_bin() {
        if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
        if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
            echo /usr/lib/postgresql/15/bin; return
        fi
        local found
        found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
        if [[ -z "$found" ]] && command -v initdb >/dev/null; then
            found="$(dirname "$(command -v initdb)")"
        fi
        [[ -n "$found" ]] || return 1
        echo "$found"
    }

    # Run a command as the cluster owner.
    _as_owner() {
        if [[ "$(id -u)" == 0 ]]; then
            if command -v runuser >/dev/null; then
                runuser -u mote -- "$@"
            else
                su mote -s /bin/sh -c "$(printf '%q ' "$@")"
            fi
        else
            "$@"
        fi
    }

    _free_port() {
        local py
        for py in "$root/.venv/bin/python" python3 python; do
            if command -v "$py" >/dev/null 2>&1 || [[ -x "$py" ]]; then
                "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
                return
            fi
        done
        echo $(( 20000 + RANDOM % 20000 ))
    }

    # Loads PGDIR and PG_BIN_ from .ci/pg.env; fails when there is none.
    _load_env() {
        [[ -f "$env_file" ]] || return 1
        PGDIR="$(sed -n 's/^export MOTE_PG_DIR=//p' "$env_file" | tr -d "'\"")"
        PG_BIN_="$(sed -n 's/^export MOTE_PG_BIN=//p' "$env_file" | tr -d "'\"")"
        [[ -n "$PGDIR" && -n "$PG_BIN_" ]]
    }

    _running() {
        _load_env || return 1
        [[ -d "$PGDIR/data" ]] || return 1
        local port
        port="$(sed -n 's|^export MOTE_OPTUNA_TEST_PG=.*@127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$env_file")"
        # pg_ctl status alone trusts postmaster.pid, which a crashed server can leave behind.
        _as_owner "$PG_BIN_/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1 \
            && "$PG_BIN_/pg_isready" -q -h "$PGDIR" -p "$port" -t 5
    }

    _stop() {
        if _load_env; then
            if [[ -d "$PGDIR/data" ]]; then
                _as_owner "$PG_BIN_/pg_ctl" -D "$PGDIR/data" -m fast -w -t 20 stop >/dev/null 2>&1 \
                    || true
            fi
            # Only ever delete a folder this script made.
            if [[ "$(basename "$PGDIR")" == mote_pg.* && -f "$PGDIR/.mote_pg" ]]; then
                rm -rf "$PGDIR"
            fi
            _log "stopped ($PGDIR)"
        fi
        rm -f "$env_file"
    }

    _start() {
        if _running; then
            _log "already running ($PGDIR)"
            grep '^export MOTE_OPTUNA_TEST_PG=' "$env_file"
            return
        fi
        _stop 2>/dev/null || true  # a leftover pg.env of a dead cluster

        local pg_bin
        if ! pg_bin="$(_pg_bin)"; then
            if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
                _log "installing PostgreSQL with apt-get"
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >&2 \
                    || DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
                pg_bin="$(_pg_bin)" || _die "no initdb found after installing PostgreSQL"
            else
                _die "PostgreSQL server binaries not found; install postgresql-15 or set PG_BIN"
            fi
        fi
        [[ -x "$pg_bin/initdb" && -x "$pg_bin/pg_ctl" ]] || _die "no initdb/pg_ctl in $pg_bin"

        if [[ "$(id -u)" == 0 ]] && ! id mote >/dev/null 2>&1; then
            _log "creating system user mote"
            useradd --system --no-create-home --shell /usr/sbin/nologin mote 2>/dev/null \
                || useradd -r -M -s /bin/false mote
        fi

        local dir password port url
        dir="$(mktemp -d "${MOTE_PG_TMPDIR:-${TMPDIR:-/tmp}}/mote_pg.XXXXXXXX")"
        touch "$dir/.mote_pg"
        password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
        port="${MOTE_PG_PORT:-$(_free_port)}"
        umask 077
        printf '%s\n' "$password" > "$dir/pwfile"
        if [[ "$(id -u)" == 0 ]]; then chown -R mote "$dir"; fi
        chmod 700 "$dir"

        _log "initdb in $dir (PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'))"
        if ! _as_owner "$pg_bin/initdb" -D "$dir/data" -U mote --pwfile="$dir/pwfile" \
                --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C \
                >"$dir/initdb.log" 2>&1; then
            cat "$dir/initdb.log" >&2
            rm -rf "$dir"
            _die "initdb failed"
        fi
        rm -f "$dir/pwfile"
        cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 100
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
        if ! _as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
                >/dev/null; then
            tail -n 30 "$dir/server.log" >&2 || true
            rm -rf "$dir"
            _die "the server did not start (port $port)"
        fi
        if ! _as_owner "$pg_bin/createdb" -h "$dir" -p "$port" -U mote -O mote mote_test; then
            _as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
            rm -rf "$dir"
            _die "createdb mote_test failed"
        fi

        url="postgresql://mote:${password}@127.0.0.1:${port}/mote_test"
        (
            umask 077
            {
                echo "# written by .ci/postgres.sh start; removed by .ci/postgres.sh stop"
                echo "export MOTE_OPTUNA_TEST_PG='$url'"
                echo "export MOTE_PG_DIR='$dir'"
                echo "export MOTE_PG_BIN='$pg_bin'"
            } > "$env_file"
        )
        _log "running on 127.0.0.1:$port (socket and data in $dir); wrote $env_file"
        echo "export MOTE_OPTUNA_TEST_PG='$url'"
    }

    case "$cmd" in
        start) _start ;;
        stop) _stop ;;
        status)
            if _running; then _log "running ($PGDIR)"; else _log "not running"; exit 1; fi ;;
        env)
            _running || _die "not running; run .ci/postgres.sh start"
            grep '^export ' "$env_file" ;;
        *) _die "unknown command '$cmd' (start, stop, status, env)" ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: run in a subshell (so `set -e`/`exit` cannot end the caller's shell), then
    # export the variables of a started cluster into the caller. Only a known subcommand is
    # taken from the arguments: a sourced script sees its caller's arguments when given none.
    case "${1:-}" in
        start | stop | status | env) _mote_pg_cmd="$1" ;;
        *) _mote_pg_cmd=start ;;
    esac
    if (_mote_pg_main "$_mote_pg_cmd" >/dev/null); then
        if [[ "$_mote_pg_cmd" == start ]]; then
            # shellcheck disable=SC1091
            source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg.env"
        fi
        unset _mote_pg_cmd
        unset -f _mote_pg_main
    else
        _mote_pg_rc=$?
        unset _mote_pg_cmd
        unset -f _mote_pg_main
        return "$_mote_pg_rc"
    fi
else
    _mote_pg_main "$@"
fi
