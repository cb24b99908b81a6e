#!/bin/sh
# Hook `prepare` (runs before the echo's PostgreSQL starts, so run.sh starts it as a standby):
# - a copy that is already a standby keeps its data and follows the current primary (follow.sh);
# - the copy of a deposed primary (a data directory without standby.signal) is rewound onto the new
#   primary's timeline with pg_rewind (rejoin.sh; a fresh pg_basebackup if that fails);
# - no copy yet: pg_basebackup from the primary (follow.sh).
. "$(dirname "$0")/lib.sh"
if [ -f "$PGDATA_DIR/PG_VERSION" ] && [ ! -f "$PGDATA_DIR/standby.signal" ]; then
  exec "$(dirname "$0")/rejoin.sh"
fi
exec "$(dirname "$0")/follow.sh"
