#!/usr/bin/env node
// Entry point of the `understudy` command: runs the built CLI (dist/). `npm run build` makes it.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('understudy: not built yet; run `npm run build` (or `bash scripts/setup.sh`) first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
process.exit(code);
