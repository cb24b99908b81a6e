#!/bin/sh
# lag hook: bytes of the primary's replication stream this replica has not applied, as JSON.
# Unknown (null) while the link to the primary is down or the primary does not answer.
set -u
field() { printf '%s\n' "$1" | tr -d '\r' | sed -n "s/^$2://p"; }
echo_info=$(redis-cli -h "$UNDERSTUDY_HOST" -p "$UNDERSTUDY_PORT" INFO replication) || exit 1
link=$(field "$echo_info" master_link_status)
applied=$(field "$echo_info" slave_repl_offset)
primary_info=$(redis-cli -h "${UNDERSTUDY_PRIMARY_HOST:-127.0.0.1}" -p "${UNDERSTUDY_PRIMARY_PORT:-0}" INFO replication 2>/dev/null || true)
head=$(field "$primary_info" master_repl_offset)
if [ "$link" != "up" ] || [ -z "$applied" ] || [ -z "$head" ]; then
  echo '{"lagBytes":null}'
  exit 0
fi
lag=$((head - applied))
[ "$lag" -lt 0 ] && lag=0
echo "{\"lagBytes\":$lag}"
