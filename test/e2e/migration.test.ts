// Predictive migration, live (seeds 003, 004): a primary whose readiness score stays high is moved to
// its synced echo by a planned switchover, and the old one is recreated as a fresh echo.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import { processesWithEnv, startUp, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-migration-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('predictive migration', { timeout: 90_000 }, () => {
  it('moves a primary whose readiness score stays past the thresholds to its echo, explained', async () => {
    const tag = randomUUID();
    const file = join(work, 'hot.yaml');
    // A primary that spins at its CPU limit: CPU alone is 30 of the score's 100; thresholds set low.
    writeFileSync(
      file,
      `services:
  - name: spin
    command: [node, -e, "for (;;) {}"]
    ports: {}
    env: { US_TEST_TAG: ${tag} }
    echo: { count: 1, mode: warm }
    resources: { cpu: 0.2, memory: 256Mi }
    migration: { auto: true, provisionThreshold: 20, switchThreshold: 25, interval: 500ms }
`,
    );
    const dataDir = join(work, 'data');
    const up = await startUp(file, dataDir, { US_TEST_TAG: tag });
    try {
      const api = ApiClient.fromDataDir(dataDir);
      const first = async (): Promise<string | undefined> =>
        (await api.instances()).find((i) => i.role === 'primary' && i.phase === 'running')?.id;
      await waitFor(async () => (await first()) !== undefined, 15_000, up.output);
      const before = await first();
      const kinds = async (): Promise<string[]> =>
        (await api.events({ service: 'spin', limit: 1000 })).map((e) => `${e.kind}:${e.outcome.status}`);
      await waitFor(
        async () => (await kinds()).some((k) => k.startsWith('migrate-retire:ok')),
        40_000,
        up.output,
      );
      const events = await api.events({ service: 'spin', limit: 1000 });
      const provision = events.find((e) => e.kind === 'migrate-provision');
      const switchover = events.find((e) => e.kind === 'migrate-switchover');
      expect(provision?.why).toMatch(/readiness \d+ ≥ 20 with confidence/);
      expect(provision?.inputs).toMatchObject({ components: expect.any(Object) });
      expect(Number(provision?.inputs['readiness'])).toBeGreaterThanOrEqual(20);
      expect(switchover?.outcome).toEqual({
        status: 'ok',
        detail: expect.stringMatching(/^spin-\d+ serves$/),
      });
      expect(events.some((e) => e.kind === 'switchover' && e.outcome.status === 'ok')).toBe(true);
      // The deposed primary is an echo again, recreated from a fresh copy; the other serves.
      const after = await api.instances();
      const primary = after.find((i) => i.role === 'primary' && i.phase !== 'stopped');
      expect(primary?.id).not.toBe(before);
      expect(after.find((i) => i.id === before)?.role).toBe('echo');
    } finally {
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });
});
