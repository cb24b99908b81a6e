import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fileSchema, type LoadedSpec } from '../../src/config/index.js';
import { ControlPlane } from '../../src/control/index.js';
import { ProcessRuntime } from '../../src/runtime/index.js';
import { SqliteStateStore } from '../../src/store/index.js';
import { repoRoot, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-statedir-'));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('state directories shared by two instances (real processes)', { timeout: 60_000 }, () => {
  it('never deletes the directory of a running primary to provision an echo that would share it', async () => {
    // A spec the loader now refuses (shared stateDir), as records of an older spec could still have it:
    // the control plane itself must not delete what another instance uses.
    const spec = fileSchema.parse({
      services: [
        {
          name: 'kv',
          command: ['node', 'server.mjs', '--port', '{port}', '--state', '{stateDir}'],
          cwd: join(repoRoot, 'examples/kv'),
          stateDir: 'shared',
          echo: { count: 1, mode: 'hot' },
        },
      ],
    });
    const loaded: LoadedSpec = { spec, file: join(work, 'u.yaml'), dir: work };
    const dataDir = join(work, 'data');
    mkdirSync(join(dataDir, 'shared'), { recursive: true });
    writeFileSync(join(dataDir, 'shared', 'precious.txt'), 'the primary state');
    const store = await SqliteStateStore.create({ dataDir });
    cleanups.push(() => store.close());
    const runtime = await ProcessRuntime.create({});
    cleanups.push(() => runtime.close());
    const control = await ControlPlane.create({ spec: loaded, dataDir, store, runtime });
    cleanups.push(() => control.close());
    await control.start();
    await waitFor(
      () => control.instances().some((i) => i.role === 'echo' && i.phase === 'failed'),
      15_000,
      () => JSON.stringify(control.instances().map((i) => [i.id, i.role, i.phase])),
    );
    expect(readFileSync(join(dataDir, 'shared', 'precious.txt'), 'utf8')).toBe('the primary state');
    const primary = control.instances().find((i) => i.role === 'primary');
    expect(primary?.phase).not.toBe('failed');
    const refused = (await control.decisions.list()).find((d) => d.kind === 'start' && d.instance === 'kv-2');
    expect(refused?.outcome.status).toBe('failed');
    expect(refused?.outcome.detail).toMatch(/^refusing to delete the state directory .*shared of kv-2: kv-1/);
    expect(existsSync(join(dataDir, 'shared'))).toBe(true);
  });
});
