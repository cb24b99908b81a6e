import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SqliteStateStore } from '../../src/store/index.js';
import { isAlive } from './lib/cli.js';
import { cleanupCrashRig, restartAndRead, startCrashing, startKv } from './lib/crash-rig.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-crash-state-'));
afterEach(cleanupCrashRig);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe(
  'a control process killed around the epoch compare-and-set (real processes)',
  { timeout: 60_000 },
  () => {
    it('leaves a state the next control process finishes: the service serves again (no endless 503) and a decision says how', async () => {
      const { file, dataDir, up, primary, echo } = await startKv(work);
      up.child.kill('SIGKILL');
      await up.exited;
      // What a forced failover of primary → echo has written when killed right after the epoch moved: the
      // intent, then the new epoch; no role saved, the old primary not fenced.
      const store = await SqliteStateStore.create({ dataDir });
      await store.put(
        'promotions/kv',
        JSON.stringify({
          service: 'kv',
          kind: 'failover',
          from: primary.id,
          to: echo.id,
          toSlot: echo.slot,
          epoch: 0,
          next: 1,
          at: Date.now(),
          decision: 0,
        }),
      );
      expect(await store.bumpEpoch('kv', 0)).toBe(1);
      await store.close();
      const { api, svc } = await restartAndRead(file, dataDir);
      expect(svc.instances.find((i) => i.role === 'primary' && i.phase === 'running')?.id).toBe(echo.id);
      expect(isAlive(primary.pid ?? 0)).toBe(false);
      const recovery = (await api.events({ service: 'kv', limit: 10_000 })).filter(
        (e) => e.kind === 'promotion-recovery',
      );
      expect(recovery.map((e) => e.outcome)).toEqual([
        { status: 'ok', detail: expect.stringMatching(/ is the primary at epoch 1/) },
      ]);
    });

    it('rolls back with nothing to undo when it was killed before the epoch moved', async () => {
      const { file, dataDir, primary } = await startCrashing(work, 'before-epoch-cas');
      const { api, svc } = await restartAndRead(file, dataDir);
      expect(svc.instances.find((i) => i.role === 'primary' && i.phase === 'running')?.pid).toBe(primary.pid);
      expect(svc.dataPlane?.epoch).toBe(0);
      const recovery = (await api.events({ service: 'kv', limit: 10_000 })).filter(
        (e) => e.kind === 'promotion-recovery',
      );
      expect(recovery.map((e) => e.outcome)).toEqual([
        { status: 'ok', detail: 'nothing had changed (the epoch had not moved)' },
      ]);
    });
  },
);
