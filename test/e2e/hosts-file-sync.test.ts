// File sync between hosts inside control, on real hosts (network namespaces, test/lib/netns-cluster.ts):
// the kv example with a warm echo kept by file sync (its kv.log synced, reloaded on promotion), two
// hosts in two zones, one etcd member and one control replica. The echo is placed on the other host,
// the primary's agent serves it a source on its host's address (TLS under the cluster CA, the pair's key
// derived from the cluster key), the echo's agent syncs from it; the echo's host agent, then the
// primary's, restarts on a new API address and the sync follows each (writes made after each restart
// reach the echo, no failover); a SIGKILLed primary then fails over to the
// echo on the other host, which serves every acknowledged write, and the old primary rejoins as its
// echo, synced back from the new primary's host. One shared cluster, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSupport } from '../lib/netns.js';
import {
  closeCluster,
  sleep,
  waitFor as waitUntil,
  NetnsCluster,
  type ClusterRecord,
} from '../lib/netns-cluster.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping file sync between hosts on network namespaces: ${support.reason}`);

/** This file's conditions are asked every 200 ms (the others' every 100 ms). */
const waitFor = (what: () => string, fn: () => Promise<boolean>, ms: number): Promise<void> =>
  waitUntil(what, fn, ms, 200);

describe.skipIf(!support.ok)(
  'file sync between hosts (warm echo on another host)',
  { timeout: 120_000 },
  () => {
    let cluster: NetnsCluster;
    let first: { primary: ClusterRecord; echo: ClusterRecord };
    let acked: [string, string][] = [];

    beforeAll(async () => {
      cluster = await NetnsCluster.start({
        hosts: { h1: 'z1', h2: 'z2' },
        etcd: ['s1'],
        controls: ['s1'],
        kvEcho: '{ count: 1, mode: warm, promote: { http: /admin/reload } }',
      });
    }, 120_000);

    afterAll(() => closeCluster(cluster));

    /** `understudy verify kv` until it is clean (a warm echo applies the last changes a moment later). */
    async function verified(primary: string): Promise<string> {
      let last = '';
      await waitFor(
        () => `understudy verify to be clean: ${last}`,
        async () => {
          const v = await cluster.verify();
          last = v.out;
          return v.status === 0;
        },
        30_000,
      );
      expect(last).toContain(`identical to ${primary}`);
      return last;
    }

    /** The agent API address `host`'s record in the store holds now (a restarted agent has a new one). */
    async function agentUrl(host: string): Promise<string | undefined> {
      const r = (await cluster.call('list', { prefix: `hosts/${host}` })) as {
        records: { key: string; value: string }[];
      };
      const rec = r.records.find((x) => x.key === `hosts/${host}`);
      return rec ? (JSON.parse(rec.value) as { url?: string; restartingUntil?: number }).url : undefined;
    }

    it('places the file-synced echo on the other host and zone, and the primary’s acknowledged writes reach it there', async () => {
      first = await cluster.pair();
      expect(first.primary.host).not.toBe(first.echo.host);
      const places = (await cluster.decisions()).filter((d) => d.kind === 'place');
      const echoPlace = places.find((d) => d.instance === first.echo.id);
      expect(echoPlace?.what).toContain(`on ${first.echo.host}`);
      expect(echoPlace?.why).not.toContain('file sync runs on');

      await cluster.startLoad(40, 'xsync');
      await sleep(2000);
      const load = await cluster.stopLoad();
      acked = load.acked;
      expect(acked.length, JSON.stringify(load.errorSamples)).toBeGreaterThan(20);
      // The writes are in the primary's kv.log on its host, and reach the echo's directory on the other.
      await waitFor(
        () => 'the acknowledged writes in the echo’s kv.log',
        async () => {
          const log = NetnsCluster.kvLog(first.echo.stateDir);
          return acked.every(([k, v]) => log.get(k)?.value === v);
        },
        20_000,
      );
      await verified(first.primary.id);
    });

    it('the echo’s host agent, then the primary’s, restarts on a new address: acknowledged writes made after each restart still reach the echo’s kv.log on the other host, with no failover', async () => {
      const since = Date.now();
      const inEchoLog = async (writes: [string, string][]): Promise<void> => {
        let missing: [string, string][] = writes;
        await waitFor(
          () =>
            `${missing.length} acknowledged writes in the echo’s kv.log, e.g. ${JSON.stringify(missing[0])}`,
          async () => {
            const log = NetnsCluster.kvLog(first.echo.stateDir);
            missing = writes.filter(([k, v]) => log.get(k)?.value !== v);
            return missing.length === 0;
          },
          20_000,
        );
      };
      for (const host of [first.echo.host, first.primary.host]) {
        const before = await agentUrl(host);
        await cluster.restartAgent(host);
        await waitFor(
          () => `the new agent of ${host} registered on a new address (was ${before})`,
          async () => {
            const now = await agentUrl(host);
            return now !== undefined && now !== before;
          },
          20_000,
        );
        await cluster.startLoad(40, `restart-${host}`);
        await sleep(1500);
        const load = await cluster.stopLoad();
        expect(load.acked.length, JSON.stringify(load.errorSamples)).toBeGreaterThan(10);
        await inEchoLog(load.acked);
        acked = [...acked, ...load.acked];
      }
      // The same pair all along: the echo kept up by the file sync, not by a failover or a reseed.
      const decisions = (await cluster.decisions()).filter((d) => d.at >= since);
      expect(decisions.filter((d) => ['failover', 'host-lost', 'restart', 'start'].includes(d.kind))).toEqual(
        [],
      );
      const pair = await cluster.pair();
      expect(pair.primary.id).toBe(first.primary.id);
      expect(pair.echo.id).toBe(first.echo.id);
      await verified(first.primary.id);
    });

    it('SIGKILL of the primary: the echo on the other host is promoted and serves every acknowledged write; the old primary rejoins as its echo, synced from the new primary’s host, and verify is clean', async () => {
      const since = Date.now();
      process.kill(first.primary.pid!, 'SIGKILL');
      await waitFor(
        () => `the failover to ${first.echo.id}: ${cluster.control.out().slice(-2000)}`,
        async () =>
          (await cluster.decisions()).some(
            (d) =>
              d.kind === 'failover' &&
              d.at >= since &&
              d.what.includes(`promote ${first.echo.id} in place of`) &&
              d.outcome.status === 'ok',
          ),
        30_000,
      );
      // Served by the promoted echo on the other host: nothing acknowledged is missing.
      expect(await cluster.missing(acked)).toEqual([]);
      const after = await cluster.pair(60_000);
      expect(after.primary).toMatchObject({ id: first.echo.id, host: first.echo.host });
      expect(after.echo).toMatchObject({ id: first.primary.id, host: first.primary.host });
      // New writes on the new primary reach the old primary's directory on its own host.
      await cluster.startLoad(40, 'after');
      await sleep(1500);
      const load = await cluster.stopLoad();
      expect(load.acked.length, JSON.stringify(load.errorSamples)).toBeGreaterThan(10);
      expect(await cluster.missing([...acked, ...load.acked])).toEqual([]);
      await verified(first.echo.id);
      const log = NetnsCluster.kvLog(after.echo.stateDir);
      expect(load.acked.filter(([k, v]) => log.get(k)?.value !== v)).toEqual([]);
    });
  },
);
