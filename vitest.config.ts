import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));

/** Where the unit tests live (beside their modules). */
const UNIT_DIRS = ['src', 'examples', 'test/bench'];

/**
 * What makes a unit test file run in the serial group rather than beside another file: it starts
 * processes (directly, through the process runtime or a local agent) or etcd; it takes a free port by
 * binding and releasing it (a file beside it could take the same port meanwhile); it waits on real
 * time (timers, sleeps, polls, clock reads: a busy neighbour would stretch them); or it talks over
 * sockets (servers, connections, fetch, the llhttp oracle and its guard timer). Read from each file, so
 * a new test that does any of this is serial without being listed: only pure, CPU-bound files run two
 * at a time.
 */
const RUNS_ALONE = new RegExp(
  [
    String.raw`\b(?:allocatePort|freePort|startEtcd)\(`,
    'node:child_process',
    String.raw`\b(?:ProcessRuntime|LocalAgent)\b`,
    String.raw`\b(?:setTimeout|setInterval|sleep|waitFor|until)\(`,
    String.raw`\b(?:Date|performance)\.now\(`,
    String.raw`\bcreateServer\b|\.listen\(|\b(?:connect|fetch|request)\(`,
    'llhttp-oracle',
  ].join('|'),
);

const unitFiles = UNIT_DIRS.flatMap((dir) =>
  readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts') && !f.includes('node_modules'))
    .map((f) => `${dir}/${f}`),
);
const alone = unitFiles.filter((f) => RUNS_ALONE.test(readFileSync(join(root, f), 'utf8')));
const together = unitFiles.filter((f) => !alone.includes(f));

// Two groups, run one after the other in one `vitest run`:
// - unit: the unit test files that are pure computation (none of the above: no process, socket or
//   real time), two files at a time;
// - serial: test/e2e/ (real processes with timing-sensitive waits: failover, leases, load) and the
//   unit files above, one file at a time (on 2 CPUs vitest would run 1 worker anyway; here it is said).
// `sequence.groupOrder` runs the groups in turn: no unit file ever runs beside a serial one.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './scripts/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: together,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'serial',
          include: ['test/**/*.test.ts', ...alone],
          exclude: [...configDefaults.exclude, ...together],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
