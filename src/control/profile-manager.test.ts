import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentRegistry, FakeAgent } from '../agent/index.js';
import { serviceSchema } from '../config/index.js';
import { SqliteStateStore } from '../store/index.js';
import { DecisionLog } from './decision-log.js';
import { PROFILE_PREFIX, ProfileManager } from './profile-manager.js';
import { echoFloorFraction, sizeFromProfile } from './profile-sizing.js';
import type { RouterStats } from '../router/index.js';
import type { InstanceRecord } from './records.js';

const MIB = 1024 * 1024;
const spec = serviceSchema.parse({
  name: 'api',
  command: ['node'],
  resources: { cpu: 2, memory: '1Gi', echoFraction: 0.1 },
  shadow: { count: 1, sample: 0.2 },
});
const rec = (id: string): InstanceRecord => ({
  id,
  service: 'api',
  role: 'primary',
  slot: 0,
  host: 'local',
  phase: 'running',
  ports: {},
  stateDir: '/nonexistent',
  restarts: [],
  limits: {},
  epoch: 0,
});
const NOON = Date.UTC(2026, 11, 7, 12, 0);

describe('ProfileManager (profiles in the store, sizing of echoes and shadows)', () => {
  let dir: string;
  let store: SqliteStateStore;
  let decisions: DecisionLog;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-profile-'));
    store = await SqliteStateStore.create({ dataDir: dir });
    decisions = await DecisionLog.create({ store });
  });
  afterEach(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const make = (minSamples = 5) =>
    ProfileManager.create(
      {
        store,
        decisions,
        agents: new AgentRegistry([new FakeAgent()]),
        specs: [spec],
        options: { minSamples },
      },
      NOON,
    );
  const feed = (m: ProfileManager, n: number, cpuPercent: number, rss: number, start = NOON): void => {
    for (let i = 0; i < n; i++)
      m.observe(
        rec('api-1'),
        { cpuPercent, rssBytes: rss, readBytes: i * 1000, writeBytes: i * 2000, at: start + i * 1000 },
        1,
      );
  };

  it('sizes echoes and shadows by the spec’s fixed fractions until the hour has enough samples, and says so', async () => {
    const m = await make();
    feed(m, 4, 80, 400 * MIB);
    const s = m.sizing(spec, 'echo', true, 1, NOON + 10_000);
    expect(s.source).toBe('fixed-fraction');
    expect(s.limits).toEqual({ cpu: 0.2, memoryBytes: Math.floor(1024 * MIB * 0.1) });
    expect(s.detail).toMatch(/4 of the 5 samples it needs for hour 12/);
  });

  it('then sizes an echo at the hour’s p50 CPU and p95 memory × 1.25, and a shadow at p95 × sample × serving', async () => {
    const m = await make();
    feed(m, 10, 80, 400 * MIB);
    const echo = m.sizing(spec, 'echo', true, 1, NOON + 20_000);
    expect(echo.source).toBe('profile');
    expect(echo.limits.cpu).toBeGreaterThanOrEqual(0.8);
    expect(echo.limits.cpu).toBeLessThanOrEqual(0.88);
    expect(echo.limits.memoryBytes).toBeGreaterThanOrEqual(500 * MIB);
    expect(echo.limits.memoryBytes).toBeLessThanOrEqual(550 * MIB);
    const shadow = m.sizing(spec, 'shadow', true, 3, NOON + 20_000);
    expect(shadow.limits.cpu).toBeGreaterThanOrEqual(0.8 * 0.2 * 3);
    expect(shadow.limits.cpu).toBeLessThanOrEqual(0.88 * 0.2 * 3);
    // Another hour of the day has no data of its own: fixed fractions there.
    expect(m.sizing(spec, 'echo', true, 1, NOON + 3 * 3600_000).source).toBe('fixed-fraction');
    // The vertical sizer's floor for echoes follows the profile.
    expect(echoFloorFraction(spec, echo)).toBeGreaterThan(0.4);
    const d = (await decisions.list()).filter((x) => x.kind === 'profile');
    expect(d.map((x) => x.what)).toEqual(['profile of api: hour 12 (UTC) has enough data']);
  });

  it('keeps the spec’s limits as the upper bounds and 0.05 core as the lower one', async () => {
    const m = await make();
    feed(m, 10, 500, 4096 * MIB);
    expect(m.sizing(spec, 'echo', true, 1, NOON + 20_000).limits).toEqual({
      cpu: 2,
      memoryBytes: 1024 * MIB,
    });
    const idle = await ProfileManager.create(
      {
        store,
        decisions,
        agents: new AgentRegistry([new FakeAgent()]),
        specs: [spec],
        options: { minSamples: 5 },
      },
      NOON,
    );
    for (let i = 0; i < 10; i++)
      idle.observe(
        rec('api-2'),
        { cpuPercent: 0, rssBytes: 1, readBytes: 0, writeBytes: 0, at: NOON + i },
        1,
      );
    expect(idle.sizing(spec, 'echo', true, 1, NOON + 20_000).limits).toEqual({
      cpu: 0.05,
      memoryBytes: 32 * MIB,
    });
    expect(sizeFromProfile(spec, 'primary', true, idle.profile('api'), idle.options, 1, NOON).limits).toEqual(
      {
        cpu: 2,
        memoryBytes: 1024 * MIB,
      },
    );
  });

  it('measures disk rates from the cumulative counters and stores the profile, versioned, for the next control process', async () => {
    const m = await make();
    feed(m, 10, 50, 100 * MIB);
    await m.flush(NOON + 60_000, true);
    const stored = await store.get(PROFILE_PREFIX + 'api');
    expect(stored).toBeDefined();
    const again = await make();
    const v = again.view(spec, true, 1, NOON + 60_000);
    expect(v?.version).toBe(1);
    const hour = v?.hours.find((h) => h.hour === 12);
    expect(hour?.samples).toBe(10);
    expect(hour?.resources.diskRead?.p50).toBeGreaterThanOrEqual(1000);
    expect(hour?.resources.diskWrite?.p50).toBeLessThanOrEqual(2000 * 1.1);
    expect(v?.now.echo.source).toBe('profile');
  });

  it('takes each instance’s network rate from its own byte counters in the HTTP router, not a share of the service’s', async () => {
    // Two serving instances: api-1 exchanges 10 000 bytes a second with the router, api-2 1 000.
    const bytes = { 'api-1': 0, 'api-2': 0 };
    const router = (): RouterStats =>
      ({
        mode: 'http',
        backends: Object.entries(bytes).map(([id, n]) => ({ id, bytes: { in: n * 0.75, out: n * 0.25 } })),
      }) as unknown as RouterStats;
    const m = await ProfileManager.create(
      {
        store,
        decisions,
        agents: new AgentRegistry([new FakeAgent()]),
        specs: [spec],
        options: { minSamples: 5 },
        router,
      },
      NOON,
    );
    for (let i = 0; i < 10; i++) {
      bytes['api-1'] = i * 10_000;
      bytes['api-2'] = i * 1_000;
      for (const id of ['api-1', 'api-2'] as const)
        m.observe(
          rec(id),
          { cpuPercent: 10, rssBytes: MIB, readBytes: 0, writeBytes: 0, at: NOON + i * 1000 },
          2,
        );
    }
    const net = m.view(spec, true, 2, NOON + 10_000)?.hours.find((h) => h.hour === 12)?.resources.network;
    // 9 rates of each (an instance's first sample has none); percentiles at most 10 % above the exact one.
    expect(net?.samples).toBe(18);
    expect(net?.max).toBeGreaterThanOrEqual(10_000);
    expect(net?.max).toBeLessThanOrEqual(11_000);
    // Divided over the serving set, both would read 5 500.
    expect(net?.p95).toBeGreaterThanOrEqual(10_000);
  });

  it('counts cold start-up and promotion times from the decisions, each decision once', async () => {
    const m = await make();
    const base = { service: 'api', why: '', what: '', at: NOON };
    m.observeDecision({
      ...base,
      seq: 1,
      kind: 'serving',
      inputs: { coldStartMs: 800 },
      outcome: { status: 'recorded' },
    });
    m.observeDecision({
      ...base,
      seq: 1,
      kind: 'serving',
      inputs: { coldStartMs: 800 },
      outcome: { status: 'recorded' },
    });
    m.observeDecision({ ...base, seq: 2, kind: 'promote-echo', inputs: {}, outcome: { status: 'pending' } });
    m.observeDecision({
      ...base,
      seq: 2,
      kind: 'promote-echo',
      inputs: { servesAfterMs: 3 },
      outcome: { status: 'ok' },
    });
    m.observeDecision({
      ...base,
      seq: 3,
      kind: 'restart',
      inputs: { coldStartMs: 5 },
      outcome: { status: 'ok' },
    });
    const v = m.view(spec, true, 1, NOON);
    expect(v?.startup.cold).toMatchObject({ samples: 1, max: 800 });
    expect(v?.startup.promotion).toMatchObject({ samples: 1, max: 3 });
  });
});
