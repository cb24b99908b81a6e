#!/bin/sh
# The old primary (stopped, possibly crashed) becomes a standby of the new one (run by prepare.sh
# before its PostgreSQL starts again).
# pg_rewind rewinds its copy to where the timelines diverged (it runs crash recovery first if the
# copy was not shut down cleanly); if that fails, the copy is rebuilt from scratch (follow).
# run.sh then starts it as a standby.
. "$(dirname "$0")/lib.sh"
need UNDERSTUDY_INSTANCE
need UNDERSTUDY_PRIMARY_HOST
need UNDERSTUDY_PRIMARY_PORT
# A freshly promoted primary records its new timeline in pg_control only at its next checkpoint;
# before that pg_rewind sees one timeline and rewinds nothing (Patroni checkpoints first, too).
sql "$UNDERSTUDY_PRIMARY_HOST" "$UNDERSTUDY_PRIMARY_PORT" "CHECKPOINT" >/dev/null ||
  die "cannot reach the new primary $UNDERSTUDY_PRIMARY_HOST:$UNDERSTUDY_PRIMARY_PORT"
if [ -f "$PGDATA_DIR/PG_VERSION" ] &&
  as_pg "$PG_BIN/pg_rewind" --target-pgdata="$PGDATA_DIR" --no-sync \
    --source-server="host=$UNDERSTUDY_PRIMARY_HOST port=$UNDERSTUDY_PRIMARY_PORT user=$PG_SUPERUSER dbname=postgres" >&2; then
  # pg_rewind copied the new primary's configuration: keep this copy's own, as a standby.
  write_conf
  sed -i '/^primary_conninfo/d' "$PGDATA_DIR/postgresql.auto.conf"
  write_standby
else
  echo "postgres recipe (rejoin.sh): pg_rewind failed; rebuilding the copy with pg_basebackup" >&2
  rm -rf "$PGDATA_DIR"
  exec "$(dirname "$0")/follow.sh"
fi
