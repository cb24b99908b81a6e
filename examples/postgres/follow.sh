#!/bin/sh
# Makes this instance's copy a streaming standby of the primary (pg_basebackup -R with the WAL
# streamed alongside); a copy that already is a standby is kept and pointed at the current primary.
# Run by prepare.sh before the instance command (run.sh) starts it.
. "$(dirname "$0")/lib.sh"
need UNDERSTUDY_INSTANCE
need UNDERSTUDY_PRIMARY_HOST
need UNDERSTUDY_PRIMARY_PORT
if [ -f "$PGDATA_DIR/standby.signal" ] && [ -f "$PGDATA_DIR/PG_VERSION" ]; then
  # Already a standby (a restarted echo): follow the current primary, wherever it is now.
  sed -i '/^primary_conninfo/d' "$PGDATA_DIR/postgresql.auto.conf"
  write_standby
  exit 0
fi
rm -rf "$PGDATA_DIR"
own_pgdata
as_pg "$PG_BIN/pg_basebackup" -h "$UNDERSTUDY_PRIMARY_HOST" -p "$UNDERSTUDY_PRIMARY_PORT" \
  -U "$PG_SUPERUSER" -D "$PGDATA_DIR" -X stream --checkpoint=fast --no-sync -R ||
  die "pg_basebackup from $UNDERSTUDY_PRIMARY_HOST:$UNDERSTUDY_PRIMARY_PORT failed"
write_conf
write_standby
