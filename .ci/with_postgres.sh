#!/usr/bin/env bash
# Run a command (make test: the test suite) with a PostgreSQL server for the `postgres` tests.
#
#   .ci/with_postgres.sh COMMAND [ARGS...]
#
# - $MOTE_OPTUNA_TEST_PG set (CI, or a server you started and sourced): use it as it is;
# - else, when the server binaries are installed: start the same throwaway cluster as CI
#   (.ci/postgres.sh), run the command, stop the cluster;
# - else: one line says which tests are skipped and how to get them, then run the command.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -z "${MOTE_OPTUNA_TEST_PG:-}" ]]; then
    if "$here/postgres.sh" status >/dev/null 2>&1; then
        # shellcheck disable=SC1091
        source "$here/pg.env"  # one already running from `.ci/postgres.sh start`: reuse it
    elif "$here/postgres.sh" start >/dev/null 2>"${TMPDIR:-/tmp}/mote_optuna_pg.log"; then
        # shellcheck disable=SC1091
        source "$here/pg.env"
        trap '"$here/postgres.sh" stop >/dev/null 2>&1 || true' EXIT
        echo "make test: started a throwaway PostgreSQL cluster for the postgres tests"
    else
        echo "make test: no PostgreSQL server binaries (initdb, pg_ctl): the postgres tests are" \
            "skipped; install them (apt-get install postgresql) or set MOTE_OPTUNA_TEST_PG"
    fi
fi
"$@"
