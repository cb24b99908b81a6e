#!/bin/sh
# promote hook: this replica stops following and accepts writes (idempotent: a primary answers OK too).
set -eu
out=$(redis-cli -h "$UNDERSTUDY_HOST" -p "$UNDERSTUDY_PORT" REPLICAOF NO ONE)
case "$out" in
  OK*) exit 0 ;;
  *) echo "REPLICAOF NO ONE answered: $out" >&2; exit 1 ;;
esac
