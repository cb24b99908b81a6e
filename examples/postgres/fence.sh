#!/bin/sh
# Hook `fence`: the old primary must never acknowledge another commit. Stops its PostgreSQL at once
# (pg_ctl stop -m immediate) if it still runs; a copy that is already down is fenced.
. "$(dirname "$0")/lib.sh"
if [ -f "$PGDATA_DIR/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1; then
  as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m immediate -w -t 30 >/dev/null || die "cannot stop the old primary"
fi
