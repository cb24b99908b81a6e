// What a service's data plane writes into the store for routers in other processes (the routing record),
// and that the control plane's store keys are the ones those routers follow.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../agent/index.js';
import { parseSpecText } from '../config/index.js';
import { isUnderstudyError } from '../errors/index.js';
import {
  INSTANCE_PREFIX as ROUTED_INSTANCES,
  PROMOTION_PREFIX as ROUTED_PROMOTIONS,
  parseRegistration,
  parseRouting,
  RouterNode,
} from '../router-node/index.js';
import { SqliteStateStore } from '../store/index.js';
import { PROMOTION_PREFIX } from './failover.js';
import { INSTANCE_PREFIX } from './instance-records.js';
import { ServiceDataPlane } from './service-data-plane.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function plane(): Promise<{ store: SqliteStateStore; plane: ServiceDataPlane }> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-data-plane-'));
  const store = await SqliteStateStore.create({ dataDir: dir });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const [spec] = parseSpecText(
    'services:\n  - name: kv\n    command: [x]\n    ports: { http: 0 }\n    echo: { count: 1, mode: warm }\n',
    join(dir, 'understudy.yaml'),
  ).services;
  const made = await ServiceDataPlane.create({
    spec: spec!,
    epoch: 0,
    addressOf: () => '127.0.0.1',
    store,
    hosts: { local: '127.0.0.1', b: '10.0.0.2' },
    routerAckMs: 300,
  });
  await store.put('services/kv', JSON.stringify(spec));
  cleanups.push(() => made.close());
  return { store, plane: made };
}

const routing = async (store: SqliteStateStore) => {
  const rec = await store.get('routing/kv');
  return rec ? parseRouting(rec.value) : undefined;
};

describe('ServiceDataPlane and routers in other processes', () => {
  it('writes the addresses of the hosts into routing/<service> when it is created', async () => {
    const { store } = await plane();
    expect(await routing(store)).toEqual({ service: 'kv', hosts: { local: '127.0.0.1', b: '10.0.0.2' } });
  });

  it("publishes a switchover's pause at the current epoch and clears it afterwards, pausing its own router too", async () => {
    const { store, plane: p } = await plane();
    await p.pauseForSwitchover(3, 'switchover of kv to kv-2', systemClock);
    expect((await routing(store))?.pause).toMatchObject({ epoch: 3, reason: 'switchover of kv to kv-2' });
    expect(p.router.stats().pause.paused).toBe(true);
    await p.resumeAfterSwitchover();
    expect((await routing(store))?.pause).toBeUndefined();
    expect(p.router.stats().pause.paused).toBe(false);
  });

  it('waits until every registered router holds mutations before the switchover goes on', async () => {
    const { store, plane: p } = await plane();
    const node = await RouterNode.create({ store, service: 'kv', listen: '127.0.0.1:0' });
    cleanups.push(() => node.close({ graceMs: 0 }));
    await p.pauseForSwitchover(0, 'switchover of kv to kv-2', systemClock);
    const [reg] = await store.list('routers/kv/');
    expect(reg && parseRegistration(reg.value)).toMatchObject({
      holding: 0,
      address: node.stats().address.host + ':' + node.stats().address.port,
    });
    expect(node.stats().paused).toBe(true);
  });

  it('calls the switchover off when a registered router does not acknowledge the pause in time', async () => {
    const { store, plane: p } = await plane();
    const lease = await store.grantLease(10_000);
    // A router that died (or cannot reach the store): registered, never acknowledging.
    await store.put(
      'routers/kv/dead1',
      JSON.stringify({ id: 'dead1', service: 'kv', address: '10.0.0.9:80', at: 1 }),
      {
        leaseId: lease.id,
      },
    );
    const err = await p.pauseForSwitchover(0, 'switchover', systemClock).catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_FAILOVER')).toBe(true);
    expect((err as Error).message).toMatch(
      /router\(s\) dead1 \(10\.0\.0\.9:80\) of 'kv' did not hold mutations within 300 ms/,
    );
  });

  it('uses the same store keys as the routers that follow it', () => {
    expect(ROUTED_INSTANCES).toBe(INSTANCE_PREFIX);
    expect(ROUTED_PROMOTIONS).toBe(PROMOTION_PREFIX);
  });
});
