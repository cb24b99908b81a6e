import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, freePort, type EtcdServer } from '../../test/lib/etcd-server.js';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import { runStateStoreContract } from './contract.js';
import { collect, expectCode } from './contract-support.js';
import { EtcdStateStore } from './etcd-state-store.js';

let etcd: EtcdServer;
let tests = 0;

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

runStateStoreContract('EtcdStateStore', async () => {
  const prefix = `contract/${++tests}/`;
  return {
    connect: () => EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix }),
    advanceTime: (ms) => new Promise((r) => setTimeout(r, ms)),
    leaseTtlMs: 1000,
    modelRuns: 40,
    destroy: async () => {
      const admin = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix });
      try {
        for (const record of await admin.list('')) await admin.delete(record.key);
      } finally {
        await admin.close();
      }
    },
  };
});

describe('EtcdStateStore', () => {
  const open = (prefix: string): Promise<EtcdStateStore> =>
    EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix });

  it('keeps stores with different prefixes apart: records, epochs and watches', async () => {
    const a = await open('iso-a/');
    const b = await open('iso-b/');
    try {
      const watcher = await collect(b, '');
      await a.put('k', 'from a');
      expect(await a.bumpEpoch('svc', 0)).toBe(1);
      await b.put('k', 'from b');
      expect(await b.get('k')).toMatchObject({ value: 'from b', version: 1 });
      expect((await a.get('k'))?.value).toBe('from a');
      expect(await b.epoch('svc')).toBe(0);
      expect((await b.list('')).map((r) => r.key)).toEqual(['k']);
      await watcher.waitForCount(1);
      expect(watcher.events.map((e) => e.record?.value)).toEqual(['from b']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('rounds a lease TTL up to whole seconds', async () => {
    const store = await open('ttl/');
    try {
      expect((await store.grantLease(1200)).ttlMs).toBe(2000);
      expect((await store.grantLease(3000)).ttlMs).toBe(3000);
      await expectCode(store.grantLease(0), ErrorCode.StoreLease);
    } finally {
      await store.close();
    }
  });

  it('refuses to open on an endpoint where no etcd listens, with UNDERSTUDY_ERR_STORE_UNAVAILABLE naming it', async () => {
    const port = await freePort();
    let error: unknown;
    try {
      await EtcdStateStore.create({ endpoints: [`127.0.0.1:${port}`], requestTimeoutMs: 1000 });
    } catch (err) {
      error = err;
    }
    expect(isUnderstudyError(error, ErrorCode.StoreUnavailable)).toBe(true);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it('fails requests with UNDERSTUDY_ERR_STORE_UNAVAILABLE naming the endpoint once etcd is gone', async () => {
    const doomed = await startEtcd();
    const store = await EtcdStateStore.create({ endpoints: [doomed.endpoint], requestTimeoutMs: 1000 });
    try {
      await store.put('k', 'v');
      await doomed.stop();
      let error: unknown;
      try {
        await store.get('k');
      } catch (err) {
        error = err;
      }
      expect(isUnderstudyError(error, ErrorCode.StoreUnavailable)).toBe(true);
      expect((error as Error).message).toContain(doomed.endpoint);
    } finally {
      await store.close();
      await doomed.stop();
    }
  });

  it('renews a lease through the members that answer when another named member accepts connections but never answers', async () => {
    // A member cut off: its address takes the connection and is silent.
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const store = await EtcdStateStore.create({
      endpoints: [`127.0.0.1:${port}`, etcd.endpoint, etcd.endpoint],
      requestTimeoutMs: 1000,
    });
    try {
      // A TTL long enough for the attempts on the silent member, however loaded the machine.
      const lease = await store.grantLease(10_000);
      for (let i = 0; i < 8; i++) expect((await store.keepAlive(lease.id)).ttlMs).toBe(10_000);
      await expectCode(store.keepAlive('12345'), ErrorCode.StoreLease);
    } finally {
      await store.close();
      silent.close();
    }
  });
});
