import { describe, expect, it } from 'vitest';
import { runPostgresPartitionPeers } from '../../bench/lib/peers-partition-postgres.js';
import {
  measurePartition,
  runRedisPartitionPeers,
  type PartitionAck,
} from '../../bench/lib/peers-partition.js';
import { PATRONI_SETTINGS } from '../../bench/lib/peers-postgres.js';
import { BENCH_PEERS } from '../../bench/lib/peers.js';
import { PEER_FAULTS, PEER_RUNNERS, unbuiltFaultRows } from '../../bench/peers.js';

const ack = (k: string, s: string, sent: number, at = sent + 1): PartitionAck => ({ k, s, sent, at });

describe('the partition fault of the peers bench: what one run measures', () => {
  const t0 = 10_000;

  it('times the fault to the first acknowledged write the main client sent after the cut', () => {
    const main = [
      ack('main-1', 'old', 9_990),
      ack('main-2', 'old', 9_999, 10_004),
      ack('main-3', 'new', 11_200),
    ];
    const r = measurePartition({
      t0,
      oldServer: 'old',
      main,
      local: [],
      present: new Set(main.map((a) => a.k)),
    });
    // main-2 was in flight at the cut (sent before it): it does not count as the first write after it.
    expect(r.recoveryMs).toBe(1201);
    expect(r.lost).toBe(0);
    expect(r.splitBrain).toBe(0);
  });

  it('counts what the isolated old master acknowledged after the cut and lost at the heal as lost, and as split brain only once a new master had acknowledged a write', () => {
    const main = [ack('main-1', 'old', 9_000), ack('main-2', 'new', 10_500)];
    const local = [
      ack('local-1', 'old', 9_500),
      ack('local-2', 'old', 10_100),
      ack('local-3', 'old', 10_900),
    ];
    const present = new Set(['main-1', 'main-2', 'local-1']);
    const r = measurePartition({ t0, oldServer: 'old', main, local, present });
    expect(r.lost).toBe(2);
    expect(r.isolatedLost).toBe(2);
    // local-2 was acknowledged alone (before main-2), local-3 while a new master was acknowledging too.
    expect(r.splitBrain).toBe(1);
    expect(r.isolatedAckMs).toBe(901);
  });

  it('counts a write the old master acknowledged after the new master had taken one as split brain, even when it was kept', () => {
    const main = [ack('main-1', 'old', 9_000), ack('main-2', 'new', 10_500)];
    const local = [ack('local-1', 'old', 10_200), ack('local-2', 'old', 10_800)];
    const present = new Set(['main-1', 'main-2', 'local-1', 'local-2']);
    const r = measurePartition({ t0, oldServer: 'old', main, local, present });
    expect(r.lost).toBe(0);
    expect(r.splitBrain).toBe(1);
  });

  it('counts a write acknowledged before the cut and missing afterwards (asynchronous replication) as lost, not as split brain', () => {
    const main = [ack('main-1', 'old', 9_990), ack('main-2', 'new', 10_900)];
    const r = measurePartition({ t0, oldServer: 'old', main, local: [], present: new Set(['main-2']) });
    expect(r.lost).toBe(1);
    expect(r.splitBrain).toBe(0);
    expect(r.isolatedLost).toBe(0);
    expect(r.isolatedAckMs).toBeNaN();
  });

  it('has no recovery time when no write was acknowledged after the cut', () => {
    const main = [ack('main-1', 'old', 9_000)];
    const r = measurePartition({ t0, oldServer: 'old', main, local: [], present: new Set(['main-1']) });
    expect(r.recoveryMs).toBeNaN();
  });
});

describe('the partition fault in the peers bench', () => {
  it('is a fault of a full run, made by the partition runners alone (the process-fault runners never get it)', () => {
    expect(PEER_FAULTS).toContain('partition');
    const makers = PEER_RUNNERS.filter((r) => r.faults.includes('partition'));
    expect(makers.map((r) => [r.service, r.run])).toEqual([
      ['redis', 'runRedisPartitionPeers'],
      ['postgres', 'runPostgresPartitionPeers'],
    ]);
    for (const r of PEER_RUNNERS.filter((x) => !makers.includes(x)))
      expect(r.faults).not.toContain('partition');
    expect(BENCH_PEERS.peers?.map((p) => p.command)).toContain('ip');
  });

  it('gives a skipped row, not a measured one, for an asked fault no runner of the service makes', () => {
    expect(unbuiltFaultRows('redis', PEER_FAULTS)).toEqual([]);
    expect(unbuiltFaultRows('postgres', PEER_FAULTS)).toEqual([]);
    const rows = unbuiltFaultRows('nginx', ['partition']);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      service: 'nginx',
      fault: 'partition',
      runs: 0,
      skipped: expect.stringMatching(/not built/),
    });
  });

  it('makes no run without network namespaces: every row says so', async () => {
    const rows = await runRedisPartitionPeers(
      { runs: 10, stopMs: 20_000, faults: ['partition'], systems: undefined, log: () => undefined },
      { ok: false, reason: 'network namespaces unavailable (network namespaces need root)' },
    );
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) {
      expect(row).toMatchObject({
        service: 'redis',
        fault: 'partition',
        runs: 0,
        lostAcked: 0,
        splitBrain: 0,
      });
      expect(row.p50Ms).toBeNaN();
      expect(row.skipped).toMatch(/^network namespaces unavailable/);
    }
    expect(rows.map((r) => r.system)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^understudy/),
        expect.stringMatching(/^redis-sentinel/),
      ]),
    );
  });

  it('makes no PostgreSQL partition run without network namespaces: Understudy and each Patroni setting get a row saying why', async () => {
    const rows = await runPostgresPartitionPeers(
      { runs: 10, stopMs: 20_000, faults: ['partition'], systems: undefined, log: () => undefined },
      { ok: false, reason: 'network namespaces unavailable (network namespaces need root)' },
    );
    expect(rows.map((r) => r.system)).toEqual([
      'understudy (external, synchronous)',
      ...PATRONI_SETTINGS.map((p) => p.system),
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ service: 'postgres', fault: 'partition', runs: 0, lostAcked: 0 });
      expect(row.skipped).toMatch(/network namespaces unavailable|not installed/);
    }
  });
});
