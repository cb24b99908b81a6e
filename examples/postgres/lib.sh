# Shared by the PostgreSQL recipe's scripts (sourced, not run). Understudy passes the context in the
# environment (docs/recipes.md, "The hook contract"): UNDERSTUDY_SERVICE, UNDERSTUDY_INSTANCE,
# UNDERSTUDY_EPOCH, UNDERSTUDY_PORT, UNDERSTUDY_STATE_DIR (this instance's state directory; the
# PostgreSQL data directory is its pgdata/), UNDERSTUDY_REJOIN, UNDERSTUDY_PRIMARY_HOST,
# UNDERSTUDY_PRIMARY_PORT, UNDERSTUDY_PRIMARY_STATE_DIR.
# Recipe settings (environment, all optional):
#   PG_BIN         PostgreSQL's programs           default: newest /usr/lib/postgresql/<v>/bin
#   PG_OS_USER     OS user PostgreSQL runs as when the scripts run as root   default: postgres
#   PG_SUPERUSER   database role the scripts connect as                       default: postgres
#   PGCONNECT_TIMEOUT  psql's connect timeout, s                                default: 2
#   PG_SYNC_STRICT 1: keep synchronous replication on a promoted primary that has no standby yet
#                  (writes wait until one follows: nothing is ever acknowledged by one copy alone);
#                  0 (default): a lone primary acknowledges alone until a standby streams
#                  (Patroni's synchronous_mode, non-strict)
set -eu

die() {
  echo "postgres recipe ($(basename "$0")): $*" >&2
  exit 1
}

need() {
  eval "v=\${$1:-}"
  [ -n "$v" ] || die "$1 is not set (it is part of Understudy's hook environment)"
}

if [ -z "${PG_BIN:-}" ]; then
  for v in 17 16 15 14 13; do
    if [ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then PG_BIN=/usr/lib/postgresql/$v/bin; break; fi
  done
fi
[ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/postgres" ] ||
  die "no PostgreSQL server found (set PG_BIN; on Debian: apt-get install postgresql)"
PG_OS_USER=${PG_OS_USER:-postgres}
PG_SUPERUSER=${PG_SUPERUSER:-postgres}
PG_SYNC_STRICT=${PG_SYNC_STRICT:-0}
# A connect to a copy on a host that is cut off gets no answer at all (no reset): without a bound, psql
# waits for the kernel's SYN retries and the hook for its own timeout (5 s) — a lag reading or a fence
# stuck that long. 2 s: a copy that answers on loopback or a LAN connects in far less.
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-2}"

need UNDERSTUDY_STATE_DIR
PGDATA_DIR="$UNDERSTUDY_STATE_DIR/pgdata"

# Runs a PostgreSQL program; as root, as $PG_OS_USER (PostgreSQL refuses to run as root), from `/`:
# the caller's working directory may not be readable by $PG_OS_USER (every path here is absolute).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups -- "$@")
  else
    "$@"
  fi
}

# Replaces this shell with a PostgreSQL program (as $PG_OS_USER when root): the supervised process is it.
exec_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    cd / || die "cannot change to /"
    exec setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups -- "$@"
  fi
  exec "$@"
}

# As root: the data directory belongs to $PG_OS_USER, and the state directory's parents must be
# traversable by it (o+x: names can be followed, nothing can be listed).
own_pgdata() {
  [ "$(id -u)" -eq 0 ] || return 0
  mkdir -p "$PGDATA_DIR"
  chown -R "$PG_OS_USER:" "$PGDATA_DIR"
  chmod 700 "$PGDATA_DIR"
  d=$UNDERSTUDY_STATE_DIR
  while [ "$d" != / ]; do
    chmod o+x "$d" 2>/dev/null || true
    d=$(dirname "$d")
  done
}

# psql against host $1 port $2, one statement $3; prints the unaligned result.
sql() {
  "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h "$1" -p "$2" -U "$PG_SUPERUSER" -d postgres -c "$3"
}

# The settings every copy gets (primary or standby): loopback, the ports Understudy allocated,
# replication; synchronous replication to any standby ('*') from the start only with PG_SYNC_STRICT=1
# (otherwise lag.sh turns it on once the standby streams).
# wal_retrieve_retry_interval: a standby that lost its primary retries streaming after this long — and a
# promote request that arrives while the next walreceiver is being started waits it out, since the startup
# process sleeps it off before it looks at the request again (PostgreSQL 15's recovery loop). The default
# 5s made 1 promotion in 10-20 take 5 s more (docs/recipes.md, "the 5 s SIGSTOP outliers"); 100ms bounds
# that wait, at the cost of one walreceiver start attempt per 100 ms while no primary answers.
write_conf() {
  cat >"$PGDATA_DIR/understudy.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
wal_log_hints = on
hot_standby = on
wal_retrieve_retry_interval = '100ms'
synchronous_commit = on
synchronous_standby_names = '$( [ "$PG_SYNC_STRICT" = 1 ] && echo '*' )'
CONF
  grep -q "^include_if_exists = 'understudy.conf'" "$PGDATA_DIR/postgresql.conf" ||
    echo "include_if_exists = 'understudy.conf'" >>"$PGDATA_DIR/postgresql.conf"
}

# The standby's connection to the primary; its application_name is the instance (pg_stat_replication).
write_standby() {
  cat >>"$PGDATA_DIR/postgresql.auto.conf" <<CONF
primary_conninfo = 'host=$UNDERSTUDY_PRIMARY_HOST port=$UNDERSTUDY_PRIMARY_PORT user=$PG_SUPERUSER application_name=$UNDERSTUDY_INSTANCE'
CONF
  touch "$PGDATA_DIR/standby.signal"
  own_pgdata
}
