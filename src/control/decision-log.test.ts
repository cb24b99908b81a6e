import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStateStore, type StateStore } from '../store/index.js';
import { DecisionLog, readOutcome } from './decision-log.js';
import type { ControlDecision, ControlDecisionKind } from './records.js';

const decision = (kind: string): Omit<ControlDecision, 'seq' | 'at'> => ({
  kind: kind as ControlDecisionKind,
  service: 'kv',
  what: kind,
  why: 'test',
  inputs: {},
  outcome: { status: 'recorded' },
});

describe('DecisionLog', () => {
  let dir: string;
  let store: StateStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-decisions-'));
    store = await SqliteStateStore.create({ dataDir: dir, tickIntervalMs: 10 });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes its numbers from the store: two logs on one store never hand out the same number', async () => {
    const a = await DecisionLog.create({ store, block: 4 });
    const b = await DecisionLog.create({ store, block: 4 });
    const seqs: number[] = [];
    for (let i = 0; i < 10; i++) {
      seqs.push(a.record(decision(`a${i}`)).seq);
      seqs.push(b.record(decision(`b${i}`)).seq);
      await Promise.all([a.flush(), b.flush()]);
    }
    expect(new Set(seqs).size).toBe(seqs.length);
    const stored = await a.list();
    expect(stored.map((d) => d.kind).sort()).toEqual(
      [...Array(10).keys()].flatMap((i) => [`a${i}`, `b${i}`]).sort(),
    );
  });

  it('continues after the decisions a previous log of the same store recorded', async () => {
    const first = await DecisionLog.create({ store });
    const last = [1, 2, 3].map(() => first.record(decision('start')).seq).at(-1) ?? 0;
    await first.flush();
    const second = await DecisionLog.create({ store });
    expect(second.record(decision('stop')).seq).toBeGreaterThan(last);
  });

  it('reads the outcomes stored before they were tagged as a status and a detail', () => {
    expect(readOutcome('ok: pid 12')).toEqual({ status: 'ok', detail: 'pid 12' });
    expect(readOutcome('recorded')).toEqual({ status: 'recorded' });
    expect(readOutcome('failed: a: b')).toEqual({ status: 'failed', detail: 'a: b' });
    expect(readOutcome({ status: 'pending' })).toEqual({ status: 'pending' });
  });

  it('reports a decision it could not write, and writes the later ones', async () => {
    let failNext = false;
    const put = (key: string, value: string): ReturnType<StateStore['put']> => {
      if (failNext && key.startsWith('events/')) {
        failNext = false;
        return Promise.reject(new Error('disk full'));
      }
      return store.put(key, value);
    };
    const flaky = new Proxy(store, {
      get: (target, name) => {
        if (name === 'put') return put;
        const value: unknown = Reflect.get(target, name);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const errors: string[] = [];
    const log = await DecisionLog.create({
      store: flaky,
      onWriteError: (err, d) => errors.push(`${d.kind}: ${err.message}`),
    });
    failNext = true;
    log.record(decision('lost'));
    log.record(decision('kept'));
    await log.flush();
    log.record(decision('later'));
    await log.flush();
    expect(errors).toEqual(['lost: disk full']);
    expect(log.failedWrites).toBe(1);
    expect((await log.list()).map((d) => d.kind)).toEqual(['kept', 'later']);
  });
});
