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
# The primary listens before it accepts connections (a fresh one still starting, a promoted one
# finishing recovery): wait for it, within the hook's timeout (UNDERSTUDY_HOOK_TIMEOUT_MS, default 120 s).
waited=0
until "$PG_BIN/pg_isready" -q -h "$UNDERSTUDY_PRIMARY_HOST" -p "$UNDERSTUDY_PRIMARY_PORT" -t 2; do
  waited=$((waited + 1))
  [ "$waited" -lt $(( ${UNDERSTUDY_HOOK_TIMEOUT_MS:-120000} / 1000 / 2 )) ] ||
    die "the primary $UNDERSTUDY_PRIMARY_HOST:$UNDERSTUDY_PRIMARY_PORT does not accept connections"
  sleep 1
done
rm -rf "$PGDATA_DIR"
own_pgdata
as_pg "$PG_BIN/pg_basebackup" -h "$UNDERSTUDY_PRIMARY_HOST" -p "$UNDERSTUDY_PRIMARY_PORT" \
  -U "$PG_SUPERUSER" -D "$PGDATA_DIR" -X stream --checkpoint=fast --no-sync -R ||
  die "pg_basebackup from $UNDERSTUDY_PRIMARY_HOST:$UNDERSTUDY_PRIMARY_PORT failed"
write_conf
write_standby
