import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentRegistry, FakeAgent } from '../agent/index.js';
import { serviceSchema } from '../config/index.js';
import { SqliteStateStore } from '../store/index.js';
import { DecisionLog } from './decision-log.js';
import { sizeInstances } from './echo-sizing.js';
import type { InstanceRecord } from './records.js';

const base = { name: 'api', command: ['node'], resources: { cpu: 2, memory: '1Gi', echoFraction: 0.1 } };
const unscaled = serviceSchema.parse(base);
const scaled = serviceSchema.parse({ ...base, scaling: { min: 1, max: 4, target: 0.7 } });

describe('sizeInstances (seed 000: echoes grow with their primary)', () => {
  let dir: string;
  let store: SqliteStateStore;
  let decisions: DecisionLog;
  let agent: FakeAgent;
  let records: InstanceRecord[];
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-sizing-'));
    store = await SqliteStateStore.create({ dataDir: dir });
    decisions = await DecisionLog.create({ store });
    agent = new FakeAgent({ limits: true });
    records = [];
    for (const [id, role] of [
      ['api-1', 'primary'],
      ['api-2', 'echo'],
    ] as const) {
      const launch = { instanceId: id, service: 'api', host: 'local', command: ['node'], cwd: dir, env: {} };
      const h = await agent.start({ ...launch, stateDir: join(dir, id), logDir: dir, logMaxBytes: 1024 });
      records.push({
        id,
        service: 'api',
        role,
        slot: 0,
        host: 'local',
        phase: 'running',
        ports: {},
        stateDir: join(dir, id),
        restarts: [],
        limits: role === 'echo' ? { cpu: 0.2, memoryBytes: 102 * 1024 * 1024 } : { cpu: 2 },
        epoch: 0,
        pid: h.pid,
        startedAt: 0,
      });
    }
  });
  afterEach(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const size = (spec: typeof unscaled, cpu: number) =>
    sizeInstances(
      spec,
      records,
      new Map([['api-1', { cpuUtilization: cpu, memoryUtilization: 0.2 }]]),
      new AgentRegistry([agent]),
      decisions,
      new Map(),
      60_000,
    );

  it('grows the echo of an unscaled service once its primary passes 50 % CPU', async () => {
    const resized = await size(unscaled, 0.6);
    expect(resized.map((r) => r.id)).toEqual(['api-2']);
    expect(records[1]!.limits.cpu).toBeGreaterThan(0.2);
  });

  it('keeps a warm-pool echo of a scaled service at its floor until the serving set passes its target', async () => {
    expect(await size(scaled, 0.6)).toEqual([]);
    expect(records[1]!.limits.cpu).toBe(0.2);
    const resized = await size(scaled, 0.85);
    expect(resized.map((r) => r.id)).toEqual(['api-2']);
    // 0.1 + 0.9 × (0.85 − 0.7) / 0.3 = 0.55 of 2 CPUs.
    expect(records[1]!.limits.cpu).toBeCloseTo(1.1, 1);
  });
});
