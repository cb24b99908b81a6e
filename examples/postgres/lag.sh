#!/bin/sh
# Hook `lag`: prints {"lagBytes":N}, the WAL this standby has not replayed yet, as the primary sees
# it (pg_stat_replication). Exit 1 when it is not streaming. Once it streams, the primary's
# synchronous_standby_names is set to '*', so that from then on a commit is acknowledged only once a
# standby has flushed it (commits wait while it catches up the rest, as with Patroni's synchronous_mode).
. "$(dirname "$0")/lib.sh"
need UNDERSTUDY_INSTANCE
need UNDERSTUDY_PRIMARY_HOST
need UNDERSTUDY_PRIMARY_PORT
lag=$(sql "$UNDERSTUDY_PRIMARY_HOST" "$UNDERSTUDY_PRIMARY_PORT" \
  "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint FROM pg_stat_replication WHERE application_name = '$UNDERSTUDY_INSTANCE' AND state = 'streaming'") ||
  die "cannot ask the primary $UNDERSTUDY_PRIMARY_HOST:$UNDERSTUDY_PRIMARY_PORT"
[ -n "$lag" ] || die "$UNDERSTUDY_INSTANCE is not streaming from $UNDERSTUDY_PRIMARY_HOST:$UNDERSTUDY_PRIMARY_PORT"
[ "$lag" -ge 0 ] 2>/dev/null || lag=0
names=$(sql "$UNDERSTUDY_PRIMARY_HOST" "$UNDERSTUDY_PRIMARY_PORT" "SHOW synchronous_standby_names")
if [ "$names" != '*' ]; then
  sql "$UNDERSTUDY_PRIMARY_HOST" "$UNDERSTUDY_PRIMARY_PORT" "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
  sql "$UNDERSTUDY_PRIMARY_HOST" "$UNDERSTUDY_PRIMARY_PORT" "SELECT pg_reload_conf()" >/dev/null
fi
printf '{"lagBytes":%s}\n' "$lag"
