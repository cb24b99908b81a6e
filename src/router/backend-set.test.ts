import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { BackendSet, type BackendResource, type BackendState } from './backend-set.js';

class NoResource implements BackendResource {
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}

function setWithClock(): { set: BackendSet<NoResource>; clock: { t: number } } {
  const clock = { t: 1000 };
  const set = new BackendSet<NoResource>(
    () => new NoResource(),
    { ejectMs: 250, drainTimeoutMs: 1000, maxWaiting: 10, now: () => clock.t },
    0,
  );
  return { set, clock };
}

/** Picks `n` backends one after another (each request finishes before the next: no outstanding load). */
function shares(set: BackendSet<NoResource>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const b = set.select() as BackendState<NoResource>;
    out[b.id] = (out[b.id] ?? 0) + 1;
  }
  return out;
}

const A = { id: 'a', host: '127.0.0.1', port: 1001 };
const B = { id: 'b', host: '127.0.0.1', port: 1002 };

describe('BackendSet: slow start (gradual traffic shift)', () => {
  it('a joining member starts at a tenth of its weight and reaches an equal share at the end of its window', () => {
    const { set, clock } = setWithClock();
    set.set([A]);
    set.set([A, { ...B, slowStartMs: 10_000 }]);
    // weight 0.1 against 1: 1 in 11.
    expect(shares(set, 1100)).toEqual({ a: 1000, b: 100 });
    clock.t += 5000; // half-way: 0.5 against 1
    expect(shares(set, 1500)).toEqual({ a: 1000, b: 500 });
    clock.t += 5000; // done: equal
    expect(shares(set, 1000)).toEqual({ a: 500, b: 500 });
    expect(set.stats().find((s) => s.id === 'b')).toMatchObject({ weight: 1, rampingUp: false });
  });

  it('a ramping member blocked on a slow request gets no more while the others have fewer per weight', () => {
    const { set } = setWithClock();
    set.set([A]);
    set.set([A, { ...B, slowStartMs: 10_000 }]);
    const b = () => set.stats().find((s) => s.id === 'b');
    // Closed loop of 4 clients where b's first request is a slow one (a cache miss) that never ends
    // here, and a's requests finish at once: b must not be given a second one.
    let picked: BackendState<NoResource> | undefined;
    for (let i = 0; i < 200 && picked === undefined; i++) {
      const s = set.select() as BackendState<NoResource>;
      if (s.id === 'b') picked = s;
    }
    expect(picked).toBeDefined();
    (picked as BackendState<NoResource>).inFlight = 1;
    const a = set.select() as BackendState<NoResource>;
    a.inFlight = 3; // three more clients waiting on a
    expect(shares(set, 500)).toEqual({ a: 500 });
    expect(b()).toMatchObject({ inFlight: 1, rampingUp: true });
    // Under enough load on a (more than 10 per request of b at weight 0.1), b takes a second one.
    a.inFlight = 11;
    expect(set.select()?.id).toBe('b');
  });

  it('a member that stays in the set keeps its ramp instead of starting it again', () => {
    const { set, clock } = setWithClock();
    set.set([A, { ...B, slowStartMs: 10_000 }]);
    clock.t += 5000;
    set.set([A, { ...B, slowStartMs: 10_000 }]);
    expect(set.stats().find((s) => s.id === 'b')).toMatchObject({ weight: 0.5, rampingUp: true });
  });

  it('without slow start a new member takes its full share at once (failover, default)', () => {
    const { set } = setWithClock();
    set.set([A]);
    set.set([A, B]);
    expect(shares(set, 1000)).toEqual({ a: 500, b: 500 });
  });

  it('a lone slow-starting member still takes every request (a dead primary moves at once)', () => {
    const { set } = setWithClock();
    set.set([{ ...B, slowStartMs: 30_000 }]);
    expect(shares(set, 100)).toEqual({ b: 100 });
  });
});

describe('BackendSet: weights', () => {
  it('weight 0 gets no new requests, and a set of only weight 0 has no usable backend', () => {
    const { set } = setWithClock();
    set.set([A, { ...B, weight: 0 }]);
    expect(shares(set, 200)).toEqual({ a: 200 });
    set.set([{ ...A, weight: 0 }]);
    expect(set.select()).toBeUndefined();
  });

  it('shares follow the weights at low load', () => {
    const { set } = setWithClock();
    set.set([
      { ...A, weight: 3 },
      { ...B, weight: 1 },
    ]);
    expect(shares(set, 400)).toEqual({ a: 300, b: 100 });
  });

  it('least outstanding requests stays the rule within the weights: a busy backend gets nothing while another is idle', () => {
    const { set } = setWithClock();
    set.set([
      { ...A, weight: 2 },
      { ...B, weight: 2 },
    ]);
    const busy = set.select() as BackendState<NoResource>;
    busy.inFlight = 9;
    const other = busy.id === 'a' ? 'b' : 'a';
    // As with plain least-outstanding (all weights 1): the idle one takes every request.
    expect(shares(set, 1100)).toEqual({ [other]: 1100 });
  });

  it('under load, each backend holds outstanding requests in proportion to its weight', () => {
    const { set } = setWithClock();
    set.set([
      { ...A, weight: 3 },
      { ...B, weight: 1 },
    ]);
    // 40 requests in flight at once (none finishes): they spread 3 to 1.
    for (let i = 0; i < 40; i++) (set.select() as BackendState<NoResource>).inFlight++;
    const inFlight = Object.fromEntries(set.stats().map((s) => [s.id, s.inFlight]));
    expect(inFlight).toEqual({ a: 30, b: 10 });
  });
  it('never picks a backend with more outstanding requests per weight than another (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ weight: fc.integer({ min: 0, max: 5 }), inFlight: fc.nat(20) }), {
          minLength: 1,
          maxLength: 5,
        }),
        (backends) => {
          const { set } = setWithClock();
          set.set(
            backends.map((b, i) => ({ id: `b${i}`, host: '127.0.0.1', port: 2000 + i, weight: b.weight })),
          );
          const states = new Map<string, BackendState<NoResource>>();
          // Reach every state through select (the only way out): pick until each was seen, or give up.
          for (let i = 0; i < 200 && states.size < backends.filter((b) => b.weight > 0).length; i++) {
            const s = set.select();
            if (s) states.set(s.id, s);
          }
          backends.forEach((b, i) => {
            const s = states.get(`b${i}`);
            if (s) s.inFlight = b.inFlight;
          });
          const picked = set.select();
          const usable = backends.map((b, i) => ({ ...b, id: `b${i}` })).filter((b) => b.weight > 0);
          if (usable.length === 0) return picked === undefined;
          const least = Math.min(...usable.map((b) => b.inFlight / b.weight));
          const p = usable.find((b) => b.id === picked?.id);
          return p !== undefined && p.inFlight / p.weight <= least + 1e-9;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a negative weight and a non-finite slow start, naming the field', () => {
    const { set } = setWithClock();
    expect(() => set.set([{ ...A, weight: -1 }])).toThrow(
      expect.objectContaining({ code: ErrorCode.RouterConfig, details: { field: 'backends[0].weight' } }),
    );
    expect(() => set.set([{ ...A, slowStartMs: Number.NaN }])).toThrow(
      expect.objectContaining({
        code: ErrorCode.RouterConfig,
        details: { field: 'backends[0].slowStartMs' },
      }),
    );
  });
});
