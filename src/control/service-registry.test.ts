// The service registry: which per-service machinery a spec gets, how it is looked up, and that closing
// the registry closes all of it. Driven through a FakeAgent (its file syncs keep nothing on disk).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentRegistry, FakeAgent, type FakeFileSync } from '../agent/index.js';
import { parseSpecText, type ServiceSpec } from '../config/index.js';
import { DecisionLog } from './decision-log.js';
import type { InstanceRecord } from './records.js';
import { ServiceRegistry } from './service-registry.js';
import { SqliteStateStore } from '../store/index.js';
import type { ServiceWiringDeps } from './service-wiring.js';

const SPECS = `services:
  - name: hot
    command: [hot]
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:0 }
    echo: { count: 1, mode: hot }
  - name: warm
    command: [warm]
    ports: {}
    echo: { count: 1, mode: warm }
`;

const echo = (service: string, id: string): InstanceRecord => ({ service, id }) as InstanceRecord;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function wired(): Promise<{ registry: ServiceRegistry; agent: FakeAgent; specs: ServiceSpec[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-registry-'));
  const store = await SqliteStateStore.create({ dataDir: dir });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const specs = parseSpecText(SPECS, join(dir, 'understudy.yaml')).services;
  const agent = new FakeAgent();
  const agents = new AgentRegistry([agent]);
  const deps: ServiceWiringDeps = {
    epoch: 0,
    agent,
    addressOf: (rec) => agents.addressOf(rec),
    decisions: await DecisionLog.create({ store }),
    utilisation: () => 0,
    onPrimary: () => undefined,
    onSyncTrouble: () => undefined,
  };
  const registry = new ServiceRegistry();
  cleanups.push(() => registry.close());
  for (const spec of specs) await registry.wire(spec, deps);
  return { registry, agent, specs };
}

describe('ServiceRegistry', () => {
  it('gives a service with ports a data plane, and a warm service without ports only a file sync', async () => {
    const { registry, agent } = await wired();
    expect(registry.plane('hot')).toBeDefined();
    expect(registry.files('hot')).toBeUndefined();
    expect(registry.plane('warm')).toBeUndefined();
    expect(registry.files('warm')).toBe(agent.syncs.get('warm'));
    expect(registry.plane('nope')).toBeUndefined();
    expect(registry.files('nope')).toBeUndefined();
  });

  it('says a warm echo is caught up only once its file sync has it and it is not lagging', async () => {
    const { registry } = await wired();
    const files = registry.files('warm') as FakeFileSync;
    expect(registry.caughtUp('warm', echo('warm', 'warm-2'))).toBe(false);
    await files.addEcho('warm-2', '/state/warm-2');
    expect(registry.caughtUp('warm', echo('warm', 'warm-2'))).toBe(true);
    files.lagging.add('warm-2');
    expect(registry.caughtUp('warm', echo('warm', 'warm-2'))).toBe(false);
  });

  it('says a hot echo is caught up only when no acknowledged mutation is missing from it', async () => {
    const { registry } = await wired();
    const replication = registry.plane('hot')?.replication;
    expect(replication).toBeDefined();
    expect(registry.caughtUp('hot', echo('hot', 'hot-2'))).toBe(true);
    const atRisk = vi.spyOn(replication!, 'atRisk').mockReturnValue([7]);
    expect(registry.caughtUp('hot', echo('hot', 'hot-2'))).toBe(false);
    expect(atRisk).toHaveBeenCalledWith('hot-2');
  });

  it('closes every data plane and file sync it made', async () => {
    const { registry } = await wired();
    const plane = vi.spyOn(registry.plane('hot')!, 'close');
    const files = vi.spyOn(registry.files('warm')!, 'close');
    await registry.close();
    expect(plane).toHaveBeenCalledOnce();
    expect(files).toHaveBeenCalledOnce();
  });
});
