#!/bin/sh
# follow / rejoin hook: make this Redis a replica of the current primary (docs/recipes.md).
# REPLICAOF is asynchronous: Redis connects and syncs (full, or partial from its backlog) on its own.
set -eu
: "${UNDERSTUDY_PRIMARY_HOST:?no primary to follow}"
out=$(redis-cli -h "$UNDERSTUDY_HOST" -p "$UNDERSTUDY_PORT" REPLICAOF "$UNDERSTUDY_PRIMARY_HOST" "$UNDERSTUDY_PRIMARY_PORT")
case "$out" in
  OK*) exit 0 ;;
  *) echo "REPLICAOF answered: $out" >&2; exit 1 ;;
esac
