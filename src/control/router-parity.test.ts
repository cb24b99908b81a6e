// Control writes what routers need: a RouterNode following the control plane's store (as a standalone
// `understudy router` does) ends up routing exactly like the control process's own router after each
// router-relevant change — failover, switchover, a serving-set member benched and back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentRegistry, FakeAgent, ManualClock } from '../agent/index.js';
import { parseSpecText } from '../config/index.js';
import { RouterNode } from '../router-node/index.js';
import { SqliteStateStore } from '../store/index.js';
import { ControlPlane } from './control-plane.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function both(yaml: string, service: string) {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-parity-'));
  const store = await SqliteStateStore.create({ dataDir: dir });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = new ManualClock();
  const agent = new FakeAgent({ clock });
  const file = join(dir, 'understudy.yaml');
  const control = await ControlPlane.create({
    spec: { spec: parseSpecText(yaml, file), file, dir },
    dataDir: dir,
    store,
    agents: new AgentRegistry([agent]),
    clock,
  });
  cleanups.push(() => control.close());
  await control.start();
  const node = await RouterNode.create({ store, service, listen: '127.0.0.1:0' });
  cleanups.push(() => node.close({ graceMs: 0 }));
  /** What the control process's router serves, and what the node serves: epoch and members, sorted. */
  const views = async (): Promise<[string, string]> => {
    const plane = (await control.services()).find((s) => s.name === service)?.dataPlane;
    const inProcess = `${plane?.epoch}:${[...(plane?.serving ?? [])].sort().join(',')}`;
    const s = node.stats();
    return [inProcess, `${s.epoch}:${[...s.serving].sort().join(',')}`];
  };
  return { control, agent, node, views };
}

/** Waits (event-loop turns and short sleeps, no clock advance) until both routers agree on `expected`. */
async function agree(views: () => Promise<[string, string]>, expected: string): Promise<void> {
  let last: [string, string] = ['', ''];
  for (let i = 0; i < 500; i++) {
    last = await views();
    if (last[0] === expected && last[1] === expected) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`in-process ${last[0]} / router node ${last[1]}, expected both ${expected}`);
}

const KV = `services:
  - name: kv
    command: [kv]
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:0 }
    echo: { count: 1 }
`;

describe('a router following the store routes like the control process router', () => {
  it('after a failover: the promoted echo at the new epoch, nothing held', async () => {
    const { agent, node, views } = await both(KV, 'kv');
    await agree(views, '0:kv-1');
    agent.crash('kv-1');
    await agree(views, '1:kv-2');
    expect(node.stats().paused).toBe(false);
  });

  it('after a planned switchover (the pause is lifted on both)', async () => {
    const { control, node, views } = await both(KV, 'kv');
    await agree(views, '0:kv-1');
    const d = await control.switchover('kv');
    expect(d.outcome.status).toBe('ok');
    await agree(views, '1:kv-2');
    for (let i = 0; i < 100 && node.stats().paused; i++) await new Promise((r) => setTimeout(r, 5));
    expect(node.stats().paused).toBe(false);
  });

  it('when a member of a serving set is benched and when it rejoins', async () => {
    const SET = `services:
  - name: web
    command: [web]
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:0 }
    health: { exec: [check], interval: 1s, failureThreshold: 3 }
    scaling: { min: 2, max: 2 }
    echo: { count: 0, mode: warm }
`;
    const { agent, views } = await both(SET, 'web');
    await agree(views, '0:web-1,web-2');
    agent.unhealthy('web-1', 3);
    await agree(views, '0:web-2');
    agent.healthy('web-1');
    await agree(views, '0:web-1,web-2');
  });
});
