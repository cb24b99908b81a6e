// Chaos on real hosts (network namespaces, test/lib/netns-cluster.ts): a 3-member etcd cluster in
// namespaces s1, s2, s3, control replicas in s1 and s2, an agent in each of three hosts in two zones,
// the kv example hot and write-through with its echo on another host, and a client in a namespace of
// its own. In order on one cluster, each under unique writes: an etcd member lost (SIGKILL); a partition
// that leaves the control leader (and one etcd member) on the minority side; a rolling restart of every
// agent. Each checks that no acknowledged write is lost, that at most one instance acknowledged writes
// under each epoch (the client counts who answered, from the kv example's x-kv-instance / x-kv-epoch
// headers), that every change of primary is a recorded failover decision, and that `understudy verify`
// is clean; closing the cluster leaves no process and no namespace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harnessNamespaces, netnsSupport } from '../lib/netns.js';
import {
  closeCluster,
  sleep,
  waitFor,
  NetnsCluster,
  type ClusterRecord,
  type LoadRun,
} from '../lib/netns-cluster.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping the chaos tests on network namespaces: ${support.reason}`);

describe.skipIf(!support.ok)('chaos on a 3-member etcd across namespaces', { timeout: 120_000 }, () => {
  let cluster: NetnsCluster;

  beforeAll(async () => {
    // Host leases of 5 s (the agent's default is 10 s): with the harness's 2 s, the etcd election a cut
    // causes lapsed the lease of a host that was not cut in two of three fresh-clone runs (an empty h3,
    // then the echo's h2 — its echo then re-created elsewhere). No host is cut in this file's tests; the
    // host-loss tests (host-loss.test.ts) keep 2 s.
    //
    // A control leader lease of 5 s (the CLI's default is 3 s), for the same reason: the leader steps
    // down one loop before its lease could lapse (3 s − 0.75 s), and a CI run at high load saw the etcd
    // election after the raft leader's SIGKILL, with the client moving to another member, take longer
    // than the 1.5–2.25 s that leaves — a safe step-down, but then the first scenario's leader changes.
    cluster = await NetnsCluster.start({
      hosts: { h1: 'z1', h2: 'z2', h3: 'z1' },
      hostLeaseMs: 5000,
      leaderTtlMs: 5000,
    });
  }, 120_000);

  afterAll(() => closeCluster(cluster));

  /** The checks every scenario ends with, once the writes stopped. */
  async function settled(
    load: LoadRun,
    before: ClusterRecord,
    since: number,
    options: { verify: boolean } = { verify: true },
  ): Promise<void> {
    expect(load.acked.length, JSON.stringify(load.errorSamples)).toBeGreaterThan(50);
    expect(load.acks.length).toBe(load.acked.length);
    expect(load.acks.filter(([, instance, epoch]) => instance === '' || !(epoch >= 0)).slice(0, 5)).toEqual(
      [],
    );
    // At most one instance acknowledged writes under each epoch.
    expect(NetnsCluster.sharedEpochs(load.acks)).toEqual({});
    expect(await cluster.missing(load.acked)).toEqual([]);
    // Every change of primary is a recorded failover decision.
    const { primary, echo } = await cluster.pair();
    if (primary.id !== before.id) {
      const failover = (await cluster.decisions()).find(
        (d) => d.kind === 'failover' && d.at >= since && d.what.includes(`promote ${primary.id} in place of`),
      );
      expect(failover?.outcome.status).toBe('ok');
    }
    await cluster.inSync(echo.id);
    if (!options.verify) return;
    const v = await cluster.verify();
    if (v.status !== 0) {
      // Say what differs as key → value, not only as file hashes.
      const [p, e] = [NetnsCluster.kvLog(primary.stateDir), NetnsCluster.kvLog(echo.stateDir)];
      const diff = [...new Set([...p.keys(), ...e.keys()])]
        .filter((k) => p.get(k)?.value !== e.get(k)?.value)
        .slice(0, 10)
        .map((k) => `${k}: primary ${p.get(k)?.value ?? '-'}, echo ${e.get(k)?.value ?? '-'}`);
      v.out += `\nkeys that differ (${p.size} on the primary, ${e.size} on the echo): ${diff.join('; ')}`;
    }
    expect(v.status, v.out).toBe(0);
    expect(v.out).toContain(`identical to ${primary.id}`);
  }

  it('an etcd member lost (SIGKILL of the raft leader): the router keeps serving, the control leader keeps its term, and nothing fails over', async () => {
    const { primary: before } = await cluster.pair();
    const leader = await cluster.leader();
    expect(leader).toBeDefined();
    const term = (await cluster.decisions()).filter((d) => d.kind === 'leadership').pop();
    const victim = cluster.etcd.leader();
    expect(victim).toBeDefined();
    await cluster.startLoad(60, 'etcd');
    await sleep(1500);
    const since = Date.now();
    cluster.etcd.kill(victim!);
    try {
      // Longer than the leader's lease (5 s) and the agents' host leases (5 s): each was renewed meanwhile.
      await sleep(7000);
      const load = await cluster.stopLoad();
      const after = await cluster.primary();
      expect(after?.id).toBe(before.id);
      expect(after?.pid).toBe(before.pid);
      expect(await cluster.leader()).toEqual(leader);
      const decisions = (await cluster.decisions()).filter((d) => d.at >= since);
      expect(decisions.filter((d) => ['failover', 'host-lost', 'leadership'].includes(d.kind))).toEqual([]);
      expect((await cluster.decisions()).filter((d) => d.kind === 'leadership').pop()).toEqual(term);
      // Every write was acknowledged by the one primary, under one epoch.
      expect(new Set(load.acks.map(([, i, e]) => `${i}@${e}`))).toEqual(
        new Set([`${before.id}@${before.epoch}`]),
      );
      await settled(load, before, since);
    } finally {
      // Back to three members even when a check failed: with one member dead, the next scenario's
      // partition would leave no majority anywhere, and its failure would say nothing about it.
      cluster.etcd.restart(victim!);
      await waitFor(
        () => `etcd member ${victim} to rejoin`,
        async () => cluster.etcd.healthy(victim!),
        20_000,
      );
    }
  });

  it('a partition that leaves the control leader and one etcd member on the minority side: the majority elects another leader that carries on, and the old leader decides nothing after the cut', async () => {
    const { primary: before } = await cluster.pair();
    const old = (await cluster.leader())!;
    const other = [...cluster.controls.keys()].find((ns) => ns !== old.ns)!;
    const oldOut = cluster.controls.get(old.ns)!.out;
    await cluster.startLoad(60, 'lead');
    await sleep(1500);
    const cutAt = Date.now();
    const printedBefore = oldOut().length;
    cluster.lab.partition(old.ns);
    let load: LoadRun;
    let afterCut: string;
    try {
      await waitFor(
        () => `c-${other} to lead: ${cluster.controls.get(other)!.out().slice(-3000)}`,
        async () => (await cluster.leader())?.ns === other,
        20_000,
      );
      await waitFor(
        () => `the router of c-${other} to serve: ${cluster.controls.get(other)!.out().slice(-3000)}`,
        async () => (await cluster.probe()) === 200,
        20_000,
      );
      // The new leader's router serves: writes go on through it for 3 s more.
      await sleep(3000);
      load = await cluster.stopLoad();
      afterCut = oldOut().slice(printedBefore);
    } finally {
      // Healed even when a check failed, so that the scenarios after this one run on a whole network.
      cluster.lab.heal(old.ns);
    }

    const decisions = await cluster.decisions();
    const elected = decisions.find(
      (d) => d.kind === 'leadership' && d.at >= cutAt && d.what.includes(`as c-${other}`),
    );
    expect(elected, JSON.stringify(decisions.slice(-10))).toBeDefined();
    // The old leader's writes were conditional on its leader key: nothing it decided after the cut was
    // stored (every decision stamped after the cut comes from the new leader's term), and it says it
    // stopped leading.
    expect(decisions.filter((d) => d.at >= cutAt && d.seq < elected!.seq)).toEqual([]);
    expect(afterCut).toContain(`c-${old.ns} stopped leading`);
    // The primary's host was not cut: nothing failed over, and neither the primary's host nor the
    // echo's was taken for lost. (A host with no instance may be: one fresh-clone run saw the 2 s lease
    // of the empty h3 lapse during the etcd election the cut caused, and its agent register again 12 ms
    // later — a real lapse of this harness's short lease, with nothing to fail over.)
    const { echo } = await cluster.pair();
    const busyHosts = new Set([before.host, echo.host]);
    expect(
      decisions.filter(
        (d) =>
          d.at >= cutAt &&
          (d.kind === 'failover' || (d.kind === 'host-lost' && busyHosts.has(String(d.inputs.host)))),
      ),
    ).toEqual([]);
    expect((await cluster.primary())?.pid).toBe(before.pid);
    // These runs once found that the new leader (another data directory, so not the old leader's
    // mutation log) rebuilt the hot echo on another host from an empty state and its own new log: an
    // echo with only the writes made after the rebuild (verify: 111 keys on the echo, 389 on the
    // primary). The echo is now seeded by a copy of the primary's state between the two agents, at the
    // new log's position, so `understudy verify` is clean.
    await settled(load, before, cutAt, { verify: true });
  });

  // A planned restart: an agent stopped with --leave-running keeps its host record, marked
  // `restartingUntil` (--restart-grace, 30 s) under a lease of that length; the control leader holds
  // the host (one `host-restart` decision, no host-lost, no failover) until the next agent of the host
  // registers, adopts the instances and clears the mark.
  it('a rolling restart of every agent, one after the other: each adopts its instances (same pids), the router keeps serving, and nothing fails over', async () => {
    const { primary: before, echo } = await cluster.pair();
    const pids = new Map((await cluster.records()).map((r) => [r.id, r.pid]));
    await cluster.startLoad(60, 'roll');
    await sleep(1000);
    const since = Date.now();
    const restartedAt = new Map<string, number>();
    for (const host of Object.keys(cluster.options.hosts)) {
      restartedAt.set(host, Date.now());
      await cluster.restartAgent(host);
      const out = cluster.agents.get(host)!.out();
      for (const r of (await cluster.records()).filter((x) => x.host === host && x.phase === 'running'))
        expect(out).toContain(`adopted ${r.id} (pid ${pids.get(r.id)})`);
      await sleep(1000);
    }
    const load = await cluster.stopLoad();
    const decisions = (await cluster.decisions()).filter((d) => d.at >= since);
    expect(decisions.filter((d) => ['failover', 'host-lost', 'restart', 'start'].includes(d.kind))).toEqual(
      [],
    );
    // One planned restart per host, each ended by its agent coming back.
    const restarts = decisions.filter((d) => d.kind === 'host-restart');
    expect(restarts.map((d) => [(d.inputs as { host: string }).host, d.outcome.status])).toEqual(
      Object.keys(cluster.options.hosts).map((h) => [h, 'ok']),
    );
    // Each agent came back on a new address: the leader moved its watches of the host's instances to
    // it, whose health checks then gave a verdict of their own (a first one is a change: `healthy`).
    for (const r of (await cluster.records()).filter((x) => x.phase === 'running'))
      await waitFor(
        () => `a health verdict of ${r.id} through the new agent of ${r.host}`,
        async () =>
          (await cluster.decisions()).some(
            (d) => d.kind === 'healthy' && d.instance === r.id && d.at >= restartedAt.get(r.host)!,
          ),
        15_000,
      );
    const after = await cluster.pair();
    expect([after.primary.id, after.primary.pid]).toEqual([before.id, before.pid]);
    expect([after.echo.id, after.echo.pid]).toEqual([echo.id, pids.get(echo.id)]);
    expect(new Set(load.acks.map(([, i]) => i))).toEqual(new Set([before.id]));
    await settled(load, before, since);
  });

  it('closing the cluster leaves no process and no namespace of it', async () => {
    expect(cluster.alive().length).toBeGreaterThan(0);
    const labId = cluster.lab.id;
    await cluster.close();
    expect(cluster.alive()).toEqual([]);
    expect(harnessNamespaces().filter((n) => n.startsWith(`${labId}-`))).toEqual([]);
  });
});
