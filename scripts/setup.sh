#!/usr/bin/env bash
# Idempotent set-up shared by the README's two commands: npm packages, Debian packages the
# tests and benchmarks need (installed with apt-get only when missing), and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# command:package pairs the test suite needs.
for pair in ${UNDERSTUDY_APT_NEEDS:-}; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp=node_modules/.understudy-install-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "setup: installing npm packages (first run builds better-sqlite3 from source, ~1-2 min)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
if ! node -e "new (require('better-sqlite3'))(':memory:')" >/dev/null 2>&1; then
  echo "setup: building better-sqlite3"
  npm rebuild better-sqlite3 --loglevel=error
fi
npm run -s build
