#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, typecheck, lint, build, tests.
# Ends with the plain line `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
export UNDERSTUDY_APT_NEEDS="${UNDERSTUDY_APT_NEEDS:-haproxy:haproxy prometheus:prometheus chromium:chromium etcd:etcd-server etcdctl:etcd-client ip:iproute2 redis-server:redis-server pg_ctlcluster:postgresql nginx:nginx-light}"
bash scripts/setup.sh
echo "== typecheck"; npx tsc -p tsconfig.json --noEmit && npx tsc -p web/tsconfig.json --noEmit
echo "== lint"; npx eslint . && npx depcruise src --config .dependency-cruiser.cjs
echo "== format"; npx prettier --check . --log-level warn
echo "== test"
exec npx vitest run "$@"
