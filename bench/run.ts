// `npm run bench -- <name> [flags]`: runs bench/<name>.ts, which prints a readable table and,
// as its last line, one JSON object.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { ensurePeers } from './lib/peers.js';

const here = dirname(fileURLToPath(import.meta.url));
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.includes('.'.concat('lib')))
  .map((f) => f.slice(0, -3))
  .filter((n) => !n.startsWith('_'));
if (!name || name === '--help' || name === '-h') {
  process.stdout.write(
    `usage: npm run bench -- <name> [--quick] [flags]\nbenchmarks: ${available.join(', ')}\n`,
  );
  process.exit(name ? 0 : 2);
}
const file = join(here, `${name}.ts`);
if (!existsSync(file) || !available.includes(name)) {
  process.stderr.write(`bench: unknown benchmark '${name}'. Available: ${available.join(', ')}\n`);
  process.exit(2);
}
// The peer tools the benchmark runs beside Understudy (bench/lib/peers.ts), installed when missing
// unless UNDERSTUDY_BENCH_NO_INSTALL is set.
if (!process.env.UNDERSTUDY_BENCH_NO_INSTALL) {
  const still = ensurePeers(name);
  if (still.length > 0) {
    process.stderr.write(
      `bench: ${name} needs ${still.map((p) => `'${p.command}' (Debian package ${p.package})`).join(', ')}, which could not be installed; install it and run again\n`,
    );
    process.exit(1);
  }
}
const result = spawnSync(process.execPath, ['--import', 'tsx', file, ...rest], { stdio: 'inherit' });
process.exit(result.status ?? 1);
