#!/bin/sh
# The instance command (the process Understudy supervises): PostgreSQL in the foreground on this
# instance's copy. A primary with no data directory yet is created with initdb. An echo's copy was made
# a standby by the prepare hook (pg_basebackup -R, or pg_rewind of a deposed primary) before this runs.
# Arguments: none; everything comes from the environment (see lib.sh), UNDERSTUDY_ROLE included.
. "$(dirname "$0")/lib.sh"
need UNDERSTUDY_PORT
if [ "${UNDERSTUDY_ROLE:-primary}" = echo ]; then
  [ -f "$PGDATA_DIR/standby.signal" ] && [ -f "$PGDATA_DIR/PG_VERSION" ] ||
    die "the echo's copy in $PGDATA_DIR is not a standby (the prepare hook makes it one)"
elif [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
  own_pgdata
  as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U "$PG_SUPERUSER" --auth=trust -E UTF8 >/dev/null
  write_conf
  echo "host replication all 127.0.0.1/32 trust" >>"$PGDATA_DIR/pg_hba.conf"
fi
own_pgdata
exec_as_pg "$PG_BIN/postgres" -D "$PGDATA_DIR" -c port="$UNDERSTUDY_PORT"
