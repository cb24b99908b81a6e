import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../test/lib/etcd-server.js';
import { AgentRegistry, FakeAgent } from '../agent/index.js';
import { serviceSchema } from '../config/index.js';
import { EtcdStateStore } from '../store/index.js';
import { DecisionLog } from './decision-log.js';
import { PROFILE_PREFIX, ProfileManager } from './profile-manager.js';
import type { InstanceRecord } from './records.js';

const spec = serviceSchema.parse({ name: 'api', command: ['node'], resources: { cpu: 1, memory: '256Mi' } });
const NOON = Date.UTC(2026, 11, 7, 12, 0);
const rec: InstanceRecord = {
  id: 'api-1',
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
};

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

describe('ProfileManager on etcd', () => {
  it('stores a profile in etcd and a new manager (the next control process) continues from it', async () => {
    const store = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix: 'profile-test/' });
    try {
      const decisions = await DecisionLog.create({ store });
      const deps = { store, decisions, agents: new AgentRegistry([new FakeAgent()]), specs: [spec] };
      const m = await ProfileManager.create(deps, NOON);
      for (let i = 0; i < 20; i++)
        m.observe(
          rec,
          { cpuPercent: 30, rssBytes: 50e6, readBytes: 0, writeBytes: 0, at: NOON + i * 1000 },
          1,
        );
      await m.flush(NOON + 30_000, true);
      expect((await store.get(PROFILE_PREFIX + 'api'))?.value).toContain('"service":"api"');
      const next = await ProfileManager.create(deps, NOON + 60_000);
      const v = next.view(spec, true, 1, NOON + 60_000);
      expect(v?.version).toBe(1);
      expect(v?.hours.find((h) => h.hour === 12)?.samples).toBe(20);
      await decisions.flush();
    } finally {
      await store.close();
    }
  });
});
