#!/usr/bin/env bash
# The README's first command: set-up (npm packages, build), then the demo on the embedded default.
# Extra arguments go to `understudy demo` (e.g. `npm run demo -- --duration 60s`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/understudy.js demo "$@"
