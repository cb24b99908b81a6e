import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isAlive, waitFor } from './lib/cli.js';
import { cleanupCrashRig, kvService, restartAndRead, startCrashing } from './lib/crash-rig.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-failover-crash-'));
afterEach(cleanupCrashRig);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe(
  'a control process killed in the middle of a promotion (real processes)',
  { timeout: 90_000 },
  () => {
    it('rolls the promotion forward after a crash right after the epoch compare-and-set: the echo serves, the old primary is fenced', async () => {
      const { file, dataDir, primary, echo } = await startCrashing(work, 'after-epoch-cas');
      // Killed before it could fence the old primary or save any role: both still run.
      expect(isAlive(primary.pid ?? 0)).toBe(true);
      expect(isAlive(echo.pid ?? 0)).toBe(true);
      const { api, svc } = await restartAndRead(file, dataDir);
      const serving = svc.instances.find((i) => i.role === 'primary' && i.phase === 'running');
      expect(serving?.id).toBe(echo.id);
      expect(serving?.pid).toBe(echo.pid);
      expect(svc.dataPlane?.epoch).toBe(1);
      await waitFor(() => !isAlive(primary.pid ?? 0), 5000);
      const events = await api.events({ service: 'kv', limit: 10_000 });
      const recovery = events.filter((e) => e.kind === 'promotion-recovery');
      expect(recovery).toHaveLength(1);
      expect(recovery[0]?.what).toMatch(new RegExp(`roll forward .*${echo.id} serves at epoch 1`));
      expect(recovery[0]?.why).toMatch(/after the epoch moved to 1/);
      expect(recovery[0]?.outcome.status).toBe('ok');
      expect(recovery[0]?.outcome.detail).toMatch(new RegExp(`fenced ${primary.id}`));
      const failover = events.find((e) => e.kind === 'failover');
      expect(failover?.outcome.status).toBe('failed');
      expect(failover?.outcome.detail).toMatch(/^the control process stopped during it/);
      // Redundancy comes back: the reconciler provisions a new echo from the promoted primary.
      await waitFor(
        async () => (await kvService(api)).instances.some((i) => i.role === 'echo' && i.phase === 'running'),
        20_000,
      );
    });

    it('rolls back to the old primary under the new epoch when the echo being promoted is gone too', async () => {
      const { file, dataDir, primary, echo } = await startCrashing(work, 'after-epoch-cas');
      process.kill(echo.pid ?? 0, 'SIGKILL');
      await waitFor(() => !isAlive(echo.pid ?? 0), 5000);
      const { api, svc } = await restartAndRead(file, dataDir);
      const serving = svc.instances.find((i) => i.role === 'primary' && i.phase === 'running');
      expect(serving?.id).toBe(primary.id);
      expect(serving?.pid).toBe(primary.pid);
      expect(svc.dataPlane?.epoch).toBe(1);
      const recovery = (await api.events({ service: 'kv', limit: 10_000 })).filter(
        (e) => e.kind === 'promotion-recovery',
      );
      expect(recovery.map((e) => e.what)).toEqual([
        expect.stringMatching(new RegExp(`roll back .*${primary.id} serves again, at epoch 1`)),
      ]);
      expect(recovery[0]?.why).toMatch(new RegExp(`${echo.id} is gone`));
    });
  },
);
