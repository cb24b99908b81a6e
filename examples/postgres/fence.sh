#!/bin/sh
# Hook `fence`: the old primary must never acknowledge another commit. Stops its PostgreSQL at once
# (pg_ctl stop -m immediate) if it still runs; a copy that is already down is fenced.
. "$(dirname "$0")/lib.sh"
running() {
  [ -f "$PGDATA_DIR/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}
# Understudy has just SIGKILLed the postmaster: until its parent reaps it, `pg_ctl status` still counts
# the zombie as running, and the stop then fails (nothing to signal, or "does not shut down" once it is
# reaped with its pid file left behind). A postmaster that is gone by then is fenced.
if running; then
  as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m immediate -w -t 30 >/dev/null 2>&1 || ! running ||
    die "cannot stop the old primary"
fi
