import { describe, expect, it } from 'vitest';
import { failoverHistory, type ControlDecision } from '../../control/index.js';
import { formatHistory } from './operator.js';

const at = Date.UTC(2026, 11, 7, 3, 0, 0, 250);
const decisions: ControlDecision[] = [
  {
    seq: 4,
    at: at - 1,
    kind: 'restart',
    service: 'kv',
    what: 'restart echo kv-2',
    why: 'requested',
    inputs: {},
    outcome: { status: 'ok' },
  },
  {
    seq: 5,
    at,
    kind: 'failover',
    service: 'kv',
    instance: 'kv-1',
    what: 'promote kv-2 in place of kv-1',
    why: 'crash: primary exited (signal SIGKILL)',
    inputs: {
      cause: 'crash',
      candidates: ['kv-2'],
      from: 'kv-1',
      to: 'kv-2',
      epoch: 2,
      timings: { detectionMs: 3, promotionMs: 412 },
    },
    outcome: { status: 'ok', detail: 'kv-2 serves at epoch 2 after 412 ms' },
  },
  {
    seq: 9,
    at: at + 60_000,
    kind: 'switchover',
    service: 'kv',
    instance: 'kv-2',
    what: 'switch kv from kv-2 to kv-1',
    why: 'requested switchover',
    inputs: { from: 'kv-2', to: 'kv-1', epoch: 3, timings: { promotionMs: 2300 } },
    outcome: { status: 'ok' },
  },
  {
    seq: 12,
    at: at + 120_000,
    kind: 'failover',
    service: 'kv',
    instance: 'kv-1',
    what: '(paused) promote kv-2 in place of kv-1',
    why: 'crash: primary exited; the service is paused',
    inputs: { cause: 'crash', candidates: ['kv-2'], paused: true },
    outcome: { status: 'skipped', detail: 'service paused' },
  },
];

describe('failover history', () => {
  it('keeps failovers and switchovers with their epochs, instances and timings', () => {
    const h = failoverHistory(decisions);
    expect(h.map((e) => e.seq)).toEqual([5, 9, 12]);
    expect(h[0]).toEqual({
      seq: 5,
      kind: 'failover',
      at,
      from: 'kv-1',
      to: 'kv-2',
      epoch: 2,
      detectionMs: 3,
      promotionMs: 412,
      reason: 'crash: primary exited (signal SIGKILL)',
      outcome: { status: 'ok', detail: 'kv-2 serves at epoch 2 after 412 ms' },
    });
    // A skipped one names the echo that would have been promoted, and has no epoch.
    expect(h[2]).toMatchObject({ from: 'kv-1', to: 'kv-2', outcome: { status: 'skipped' } });
    expect(h[2]?.epoch).toBeUndefined();
  });

  it('prints a table: time, kind, epoch, from, to, durations, outcome and reason', () => {
    const lines = formatHistory(failoverHistory(decisions)).trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^TIME\s+KIND\s+EPOCH\s+FROM\s+TO\s+DETECTED\s+SERVING AFTER\s+OUTCOME\s+REASON$/,
    );
    expect(lines[1]).toMatch(
      /^2026-12-07 03:00:00\.250\s+failover\s+2\s+kv-1\s+kv-2\s+3 ms\s+412 ms\s+ok\s+crash: primary exited \(signal SIGKILL\)$/,
    );
    expect(lines[2]).toMatch(/switchover\s+3\s+kv-2\s+kv-1\s+-\s+2\.3 s\s+ok/);
    expect(lines[3]).toMatch(/failover\s+-\s+kv-1\s+kv-2\s+-\s+-\s+skipped\s+.*\(skipped: service paused\)$/);
  });

  it('says so when there is nothing', () => {
    expect(formatHistory([])).toBe('no failover or switchover recorded\n');
  });
});
