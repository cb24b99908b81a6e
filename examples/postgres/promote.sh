#!/bin/sh
# Hook `promote`: ends recovery on this standby (pg_ctl promote, waiting until it accepts writes).
# Every commit the old primary acknowledged is here: with synchronous replication it was flushed on
# this standby first, and promotion replays all of it. Alone now, it acknowledges commits by itself
# until a standby streams (unless PG_SYNC_STRICT=1).
. "$(dirname "$0")/lib.sh"
need UNDERSTUDY_PORT
as_pg "$PG_BIN/pg_ctl" promote -D "$PGDATA_DIR" -w -t 60 >/dev/null || die "pg_ctl promote failed"
# The new timeline reaches pg_control at a checkpoint: then pg_rewind can rewind the old primary.
sql 127.0.0.1 "$UNDERSTUDY_PORT" "CHECKPOINT" >/dev/null
if [ "$PG_SYNC_STRICT" != 1 ]; then
  sql 127.0.0.1 "$UNDERSTUDY_PORT" "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null
  sql 127.0.0.1 "$UNDERSTUDY_PORT" "SELECT pg_reload_conf()" >/dev/null
fi
