#!/bin/sh
# Hook `follow`: makes this instance's copy a streaming standby of the primary (pg_basebackup -R
# with the WAL streamed alongside), unless it already is one. The instance command (run.sh) starts it.
. "$(dirname "$0")/lib.sh"
need UNDERSTUDY_INSTANCE
need UNDERSTUDY_PRIMARY_HOST
need UNDERSTUDY_PRIMARY_PORT
if [ -f "$PGDATA_DIR/standby.signal" ] && [ -f "$PGDATA_DIR/PG_VERSION" ]; then
  exit 0 # already a standby (e.g. rejoined by pg_rewind)
fi
rm -rf "$PGDATA_DIR"
own_pgdata
as_pg "$PG_BIN/pg_basebackup" -h "$UNDERSTUDY_PRIMARY_HOST" -p "$UNDERSTUDY_PRIMARY_PORT" \
  -U "$PG_SUPERUSER" -D "$PGDATA_DIR" -X stream --checkpoint=fast --no-sync -R ||
  die "pg_basebackup from $UNDERSTUDY_PRIMARY_HOST:$UNDERSTUDY_PRIMARY_PORT failed"
write_conf
write_standby
