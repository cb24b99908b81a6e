import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostRecord } from '../agent/index.js';
import { parseSpecText, type ServiceSpec } from '../config/index.js';
import { SqliteStateStore, type StateStore } from '../store/index.js';
import { ClusterHosts, type ClusterHostsOptions, type HostDirectory } from './cluster-hosts.js';
import { DecisionLog } from './decision-log.js';
import type { ControlDecision, InstanceRecord } from './records.js';

const rec = (id: string, role: InstanceRecord['role'], host: string, phase = 'running'): InstanceRecord =>
  ({
    id,
    service: 'kv',
    role,
    host,
    phase,
    slot: 0,
    ports: {},
    stateDir: `/s/${id}`,
    restarts: [],
    limits: {},
    epoch: 0,
  }) as InstanceRecord;

const hostRec = (host: string, zone: string): HostRecord => ({
  host,
  zone,
  url: `http://127.0.0.1:${1000 + Number(host.slice(1))}`,
  address: '127.0.0.1',
  runtime: 'process',
  cores: 8,
  memoryBytes: 16 * 2 ** 30,
  pid: 1,
  startedAt: 0,
});

/** The hosts as a HostAgentRegistry shows them, changed by the test. */
class Directory implements HostDirectory {
  hosts: HostRecord[] = [hostRec('h1', 'z1'), hostRec('h2', 'z2'), hostRec('h3', 'z1')];
  #listeners = new Set<(c: 'up' | 'down', h: string, r?: HostRecord) => void>();
  records(): HostRecord[] {
    return this.hosts;
  }
  onHostChange(l: (c: 'up' | 'down', h: string, r?: HostRecord) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  down(host: string): void {
    this.hosts = this.hosts.filter((h) => h.host !== host);
    for (const l of this.#listeners) l('down', host);
  }
  /** A host's record written again (a planned restart's mark, or the next agent registering). */
  put(record: HostRecord): void {
    this.hosts = [...this.hosts.filter((h) => h.host !== record.host), record];
    for (const l of this.#listeners) l('up', record.host, record);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('ClusterHosts', () => {
  let dir: string;
  let store: StateStore;
  let decisions: DecisionLog;
  let now = 1_000_000;
  let records: InstanceRecord[];
  let lost: { id: string; to: string | undefined }[];
  /** When (Date.now()) each failover of a lost primary began. */
  let lostAt: number[];
  let shadowsLost: string[];
  /** Failovers prepared while they wait: the primary, the echo, and how many failovers had begun then. */
  let prepared: { id: string; echo: string; failoversBefore: number }[];
  let fileSync: string | undefined;
  let seen: ControlDecision[];
  const spec = parseSpecText(
    'services:\n  - name: kv\n    command: [x]\n    echo: { count: 1, mode: hot }\n',
    'kv.yaml',
  ).services[0] as ServiceSpec;

  /** Hosts whose agents do not answer the heartbeats (fast ones: 10 ms apart, 30 ms of pause). */
  let silent: Set<string>;
  /** Closed after each test, whatever happened (their heartbeats must not outlive it). */
  const made: ClusterHosts[] = [];
  const make = (
    directory: HostDirectory,
    replaceAfterMs = 5000,
    extra: ClusterHostsOptions = {},
  ): ClusterHosts => {
    const hosts = new ClusterHosts(
      directory,
      {
        decisions,
        now: () => now,
        records: () => records,
        specOf: () => spec,
        fileSyncHost: () => fileSync,
        loss: {
          primaryLost: (r, _d, _e, to) => {
            lost.push({ id: r.id, to });
            lostAt.push(Date.now());
            return true;
          },
          shadowLost: (r) => shadowsLost.push(r.id),
          prepare: (r, echo) => prepared.push({ id: r.id, echo, failoversBefore: lost.length }),
        },
      },
      {
        ...extra,
        replaceAfterMs,
        heartbeat: {
          intervalMs: 10,
          acceptablePauseMs: 30,
          beat: async (t) => (silent.has(t.host) ? 'silent' : 'answered'),
        },
      },
    );
    made.push(hosts);
    return hosts;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-cluster-hosts-'));
    store = await SqliteStateStore.create({ dataDir: dir, tickIntervalMs: 10 });
    decisions = await DecisionLog.create({ store, now: () => now });
    seen = [];
    decisions.subscribe((d) => seen.push(d));
    records = [];
    lost = [];
    lostAt = [];
    shadowsLost = [];
    prepared = [];
    fileSync = undefined;
    silent = new Set();
  });
  afterEach(async () => {
    for (const h of made.splice(0)) h.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('places an echo off its primary’s host and zone, and records the placement with its reason', () => {
    records = [rec('kv-1', 'primary', 'h1')];
    const hosts = make(new Directory());
    const d = hosts.place('kv', 'echo', 'kv-2');
    expect(d).toMatchObject({ applied: true, host: 'h2', zone: 'z2' });
    const recorded = seen.find((x) => x.kind === 'place');
    expect(recorded).toMatchObject({
      instance: 'kv-2',
      what: 'place echo kv-2 on h2 (zone z2)',
      outcome: { status: 'ok' },
    });
    expect(recorded?.why).toContain('another host and zone');
    hosts.close();
  });

  it('keeps a file-synced service on its file sync’s host (cross-host file sync is not wired), saying so', () => {
    records = [rec('kv-1', 'primary', 'h1')];
    fileSync = 'h1';
    const hosts = make(new Directory());
    const d = hosts.place('kv', 'echo', 'kv-2');
    expect(d).toMatchObject({ applied: true, host: 'h1' });
    expect(d.reason).toContain('its file sync runs on h1');
    hosts.close();
  });

  it('a host whose lease lapsed: its primary fails over to the echo on another host, recorded as host-lost', () => {
    records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2')];
    const directory = new Directory();
    const hosts = make(directory);
    directory.down('h1');
    expect(lost).toEqual([{ id: 'kv-1', to: 'kv-2' }]);
    const d = seen.find((x) => x.kind === 'host-lost');
    expect(d?.what).toBe('host h1 is down: 1 instance(s) on it');
    expect(d?.why).toContain('the lease of host h1 lapsed');
    expect(hosts.state('h1')).toBe('down');
    hosts.close();
  });

  it('holds a lost host’s instances for it until replaceAfterMs, then has them re-created elsewhere', () => {
    const echo = rec('kv-2', 'echo', 'h2');
    records = [rec('kv-1', 'primary', 'h1'), echo];
    const directory = new Directory();
    const hosts = make(directory, 5000);
    expect(hosts.restartGate(echo)).toBe('go');
    directory.down('h2');
    expect(hosts.restartGate(echo)).toBe('wait');
    expect(hosts.overdue()).toEqual([]);
    now += 5000;
    expect(hosts.restartGate(echo)).toBe('replace');
    expect(hosts.overdue().map((r) => r.id)).toEqual(['kv-2']);
    // Re-placed: another host than the primary's (h1), h2 being down.
    expect(hosts.place('kv', 'echo', 'kv-2')).toMatchObject({ applied: true, host: 'h3' });
    hosts.close();
  });

  it('a lost host’s shadow is re-created at once (not after replaceAfterMs), in its live instance’s zone, as a recorded decision', () => {
    const directory = new Directory();
    directory.hosts.push(hostRec('h4', 'z1'));
    const shadow = rec('kv-3', 'shadow', 'h3');
    records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2'), shadow];
    const hosts = make(directory, 60_000);
    directory.down('h3');
    expect(shadowsLost).toEqual(['kv-3']);
    expect(hosts.restartGate(shadow)).toBe('replace');
    const recreate = seen.find((x) => x.kind === 'recreate');
    expect(recreate?.what).toBe('recreate shadow kv-3 in zone z1 (its host h3 is lost)');
    expect(recreate?.inputs).toMatchObject({ planned: 'h4', zone: 'z1' });
    // Re-placed in zone z1 on h4 — not on h2 (zone z2), though h2 is up too.
    expect(hosts.place('kv', 'shadow', 'kv-3')).toMatchObject({ applied: true, host: 'h4', zone: 'z1' });
    // An echo of a lost host still waits for it (its data may come back with the host).
    expect(hosts.restartGate({ ...rec('kv-2', 'echo', 'h3') })).toBe('wait');
    hosts.close();
  });

  it('keeps a shadow pool in each zone with live instances: a new shadow follows the live instance whose zone has fewest', () => {
    const directory = new Directory();
    directory.hosts.push(hostRec('h4', 'z2'));
    records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'primary', 'h2'), rec('kv-3', 'shadow', 'h3')];
    const hosts = make(directory);
    const d = hosts.place('kv', 'shadow', 'kv-4');
    expect(d).toMatchObject({ applied: true, host: 'h4', zone: 'z2', request: { live: 'kv-2' } });
    hosts.close();
  });

  it('places a migration target off the primary’s host and its echo’s, recorded; a preview records nothing', () => {
    const primary = rec('kv-1', 'primary', 'h1');
    records = [primary, rec('kv-2', 'echo', 'h2')];
    const hosts = make(new Directory());
    expect(hosts.placeMigration(primary, false)).toMatchObject({ applied: true, host: 'h3' });
    expect(seen.filter((x) => x.kind === 'place')).toEqual([]);
    hosts.placeMigration(primary);
    const placed = seen.find((x) => x.kind === 'place');
    expect(placed?.what).toBe('place the migration target of primary kv-1 on h3 (zone z1)');
    expect(placed?.why).toContain('not holding its echo');
    hosts.close();
  });

  it('spreads a scaled service’s warm-pool echoes across zones instead of placing them off one primary', () => {
    const scaled = parseSpecText(
      'services:\n  - name: kv\n    command: [x]\n    ports: { http: 0 }\n    echo: { count: 2, mode: warm }\n    scaling: { min: 1, max: 3 }\n',
      'kv.yaml',
    ).services[0] as ServiceSpec;
    // kv-1 serves on h1 (z1), a warm echo already stands by on h2 (z2): the next one goes to zone z1.
    records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2'), rec('kv-3', 'primary', 'h2')];
    const hosts = new ClusterHosts(new Directory(), {
      decisions,
      now: () => now,
      records: () => records,
      specOf: () => scaled,
      fileSyncHost: () => undefined,
      loss: { primaryLost: () => true, shadowLost: () => undefined },
    });
    const d = hosts.place('kv', 'echo', 'kv-4');
    expect(d).toMatchObject({ applied: true, host: 'h3', request: { kind: 'warm-pool' } });
    expect(d.reason).toContain('spread across zones');
    hosts.close();
  });

  describe('a planned agent restart (the host record marked restartingUntil)', () => {
    // Settling a decision tells the subscribers again: one entry per decision (by seq).
    const restartDecisions = () => [
      ...new Map(seen.filter((x) => x.kind === 'host-restart').map((x) => [x.seq, x])).values(),
    ];
    const hostLost = (host: string) =>
      seen.filter((x) => x.kind === 'host-lost' && (x.inputs as { host?: string }).host === host);

    it('holds the host while the window lasts: silent heartbeats make no host-lost and no failover (an unmarked silent host is lost meanwhile), one host-restart decision; the agent back settles it ok', async () => {
      records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2'), rec('db-1', 'primary', 'h3')];
      records.push(rec('db-2', 'echo', 'h2'));
      const directory = new Directory();
      const hosts = make(directory);
      hosts.start();
      directory.put({ ...hostRec('h1', 'z1'), restartingUntil: now + 60_000 });
      expect(restartDecisions()).toHaveLength(1);
      expect(restartDecisions()[0]).toMatchObject({
        what: `host h1 restarts its agent (planned): held until ${new Date(now + 60_000).toISOString()}`,
        inputs: { host: 'h1', windowMs: 60_000, instances: ['primary kv-1'] },
        outcome: { status: 'pending' },
      });
      silent.add('h1');
      silent.add('h3');
      // h3 (not marked) is lost and its primary fails over; h1, as silent, is held.
      await until('h3 to be lost', () => hostLost('h3').length > 0);
      await sleep(100);
      expect(hostLost('h1')).toEqual([]);
      expect(lost).toEqual([{ id: 'db-1', to: 'db-2' }]);
      expect(hosts.restarting('h1')).toBe(true);
      // Nothing new goes on it and a restart of its instances waits, while its agent is away.
      expect(hosts.state('h1')).toBe('suspect');
      expect(hosts.restartGate(rec('kv-1', 'primary', 'h1', 'exited'))).toBe('wait');
      // The same mark seen again is no second decision.
      directory.put({ ...hostRec('h1', 'z1'), restartingUntil: now + 60_000 });
      expect(restartDecisions()).toHaveLength(1);

      // The next agent registers (a new API port, no mark) and answers.
      now += 2500;
      silent.delete('h1');
      directory.put({ ...hostRec('h1', 'z1'), url: 'http://127.0.0.1:2001', pid: 2 });
      expect(hosts.restarting('h1')).toBe(false);
      expect(restartDecisions()).toHaveLength(1);
      expect(restartDecisions()[0]?.outcome).toEqual({
        status: 'ok',
        detail: 'an agent of host h1 is back after 2500 ms (pid 2)',
      });
      await until('h1 to be up', () => hosts.state('h1') === 'up');
      await sleep(100);
      expect(hostLost('h1')).toEqual([]);
      expect(lost.map((l) => l.id)).toEqual(['db-1']);
      hosts.close();
    });

    it('no agent back by the end of the window: the ordinary host-loss path runs (host-lost, the primary fails over to its echo elsewhere)', async () => {
      records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2')];
      const directory = new Directory();
      const hosts = make(directory);
      hosts.start();
      directory.put({ ...hostRec('h1', 'z1'), restartingUntil: now + 400 });
      silent.add('h1');
      await sleep(200);
      // Suspected by now, but held: the window (400 ms) has not passed.
      expect(hostLost('h1')).toEqual([]);
      expect(lost).toEqual([]);
      await until('h1 to be lost', () => hostLost('h1').length > 0);
      expect(lost).toEqual([{ id: 'kv-1', to: 'kv-2' }]);
      expect(hostLost('h1')[0]?.what).toBe('host h1 is suspected: 1 instance(s) on it');
      expect(restartDecisions()[0]?.outcome.status).toBe('failed');
      expect(restartDecisions()[0]?.outcome.detail).toContain('no agent of host h1 back within its window');
      expect(hosts.restarting('h1')).toBe(false);
      hosts.close();
    });

    it('its record lapsing in the window (the grace lease ran out) is a host loss: host-lost, the primary fails over', () => {
      records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2')];
      const directory = new Directory();
      const hosts = make(directory);
      directory.put({ ...hostRec('h1', 'z1'), restartingUntil: now + 60_000 });
      directory.down('h1');
      expect(lost).toEqual([{ id: 'kv-1', to: 'kv-2' }]);
      expect(hostLost('h1')[0]?.why).toContain('the lease of host h1 lapsed');
      expect(restartDecisions()[0]?.outcome.detail).toContain('its record lapsed');
      expect(hosts.state('h1')).toBe('down');
      hosts.close();
    });

    it('a mark already there when control starts (a new leader during the restart) is honoured; a mark whose time has passed is not', async () => {
      records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2'), rec('db-1', 'primary', 'h3')];
      records.push(rec('db-2', 'echo', 'h2'));
      const directory = new Directory();
      directory.hosts = [
        { ...hostRec('h1', 'z1'), restartingUntil: now + 60_000 },
        hostRec('h2', 'z2'),
        { ...hostRec('h3', 'z1'), restartingUntil: now - 1 },
      ];
      const hosts = make(directory);
      hosts.start();
      expect(restartDecisions().map((d) => (d.inputs as { host: string }).host)).toEqual(['h1']);
      silent.add('h1');
      silent.add('h3');
      await until('h3 to be lost', () => hostLost('h3').length > 0);
      await sleep(100);
      expect(hostLost('h1')).toEqual([]);
      expect(lost.map((l) => l.id)).toEqual(['db-1']);
      hosts.close();
    });
  });

  describe('a suspected host whose agent self-fences (its record publishes fenceAfterMs)', () => {
    const fenced = (fenceAfterMs: number): HostRecord => ({ ...hostRec('h1', 'z1'), fenceAfterMs });
    const waits = (): ControlDecision[] =>
      seen.filter((d) => d.kind === 'host-lost' && d.what.startsWith('failover of'));
    /** kv-1 on h1, whose agent publishes the bound `fenceAfterMs`, and its echo kv-2 on h2: started. */
    const fencedPair = (
      fenceAfterMs: number,
      fenceMarginMs?: number,
    ): { directory: Directory; hosts: ClusterHosts } => {
      records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2')];
      const directory = new Directory();
      directory.hosts = [fenced(fenceAfterMs), hostRec('h2', 'z2'), hostRec('h3', 'z1')];
      const hosts = make(directory, 5000, fenceMarginMs === undefined ? {} : { fenceMarginMs });
      hosts.start();
      return { directory, hosts };
    };

    it('does not fail its primary over before the host’s self-fence deadline: one pending decision says it waits and how long, then the echo takes over', async () => {
      const { hosts } = fencedPair(400, 50);
      await sleep(50);
      const silencedAt = Date.now();
      silent.add('h1');
      await until('h1 to be suspected', () => seen.some((d) => d.what.startsWith('host h1 is suspected')));
      expect(lost).toEqual([]);
      expect(hosts.fenceWaiting('h1')).toBe(true);
      expect(waits()).toHaveLength(1);
      expect(waits()[0]?.what).toMatch(/^failover of kv-1 waits for h1's self-fence deadline, \d+ ms$/);
      expect(waits()[0]?.why).toContain('fences its primaries 400 ms after its last lease renewal');
      expect(waits()[0]?.outcome.status).toBe('pending');
      await until('the failover', () => lost.length > 0);
      expect(lost).toEqual([{ id: 'kv-1', to: 'kv-2' }]);
      // Never before the deadline: the last heartbeat answered before the silence began, so the
      // deadline is at least fenceAfterMs + the margin after it.
      expect(lostAt[0]! - silencedAt).toBeGreaterThanOrEqual(400);
      expect(waits()[0]?.outcome).toMatchObject({ status: 'ok' });
      expect(waits()[0]?.outcome.detail).toContain("h1's self-fence deadline passed");
      expect(hosts.fenceWaiting('h1')).toBe(false);
    });

    it('counts the wait from when the first unanswered heartbeat was sent (the cut came before it could be answered)', async () => {
      // A bound long enough that the wait is certain, even on a loaded machine.
      const { hosts } = fencedPair(5000, 50);
      await sleep(50);
      silent.add('h1');
      await until('the wait', () => hosts.fenceWaiting('h1'));
      const inputs = waits()[0]!.inputs as { unansweredMs: number; waitMs: number };
      expect(inputs.unansweredMs).toBeGreaterThanOrEqual(0);
      expect(inputs.waitMs).toBe(Math.ceil(5000 + 50 - inputs.unansweredMs));
      expect(waits()[0]?.why).toContain(
        `5000 + 50 (margin) − ${inputs.unansweredMs} (since the first unanswered heartbeat was sent)`,
      );
    });

    it('prepares the failover while it waits (the echo planned to take over, once), and never for a failover that does not wait', async () => {
      const { directory, hosts } = fencedPair(60_000, 50);
      silent.add('h1');
      await until('the wait', () => hosts.fenceWaiting('h1'));
      expect(prepared).toEqual([{ id: 'kv-1', echo: 'kv-2', failoversBefore: 0 }]);
      // The lease lapses: the failover goes on, prepared before it began.
      directory.down('h1');
      expect(lost).toEqual([{ id: 'kv-1', to: 'kv-2' }]);
      // A lapsed lease of a host not suspected fails over at once: nothing to overlap, nothing prepared.
      records = [...records, rec('kv-3', 'primary', 'h3'), rec('kv-4', 'echo', 'h2')];
      directory.down('h3');
      expect(lost.map((l) => l.id)).toEqual(['kv-1', 'kv-3']);
      expect(prepared).toHaveLength(1);
    });

    it('the host answering again before the deadline: no failover, the wait settles skipped', async () => {
      const { hosts } = fencedPair(5000, 50);
      silent.add('h1');
      await until('the wait', () => hosts.fenceWaiting('h1'));
      silent.delete('h1');
      await until('the wait to end', () => !hosts.fenceWaiting('h1'));
      await sleep(100);
      expect(lost).toEqual([]);
      expect(waits()[0]?.outcome.status).toBe('skipped');
    });

    it('its lease lapsing during the wait: the failover goes on at once (a lapsed lease outlasts the self-fence)', async () => {
      const { directory, hosts } = fencedPair(60_000, 50);
      silent.add('h1');
      await until('the wait', () => hosts.fenceWaiting('h1'));
      expect(lost).toEqual([]);
      directory.down('h1');
      expect(lost).toEqual([{ id: 'kv-1', to: 'kv-2' }]);
      expect(waits()[0]?.outcome.detail).toContain('the lease of host h1 lapsed');
      expect(hosts.fenceWaiting('h1')).toBe(false);
    });

    it('self-fencing off (fenceAfterMs 0): the failover waits for the lease to lapse, saying so', async () => {
      const { directory, hosts } = fencedPair(0);
      silent.add('h1');
      await until('the wait', () => hosts.fenceWaiting('h1'));
      await sleep(200);
      expect(lost).toEqual([]);
      expect(waits()[0]?.what).toBe(
        "failover of kv-1 waits for h1's lease to lapse (its agent does not self-fence)",
      );
      directory.down('h1');
      expect(lost).toEqual([{ id: 'kv-1', to: 'kv-2' }]);
    });

    it('an agent that publishes no bound (older): fails over on suspicion, as before', async () => {
      records = [rec('kv-1', 'primary', 'h1'), rec('kv-2', 'echo', 'h2')];
      const hosts = make(new Directory());
      hosts.start();
      silent.add('h1');
      await until('the failover', () => lost.length > 0);
      expect(waits()).toEqual([]);
      expect(hosts.fenceWaiting('h1')).toBe(false);
    });
  });
});
