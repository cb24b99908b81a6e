// The record → router state function of a router that follows the store: which instance it serves,
// which it refuses, and when it holds mutations, from instance records, the epoch and the intent.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseInstance,
  parseIntent,
  parseRouting,
  routeState,
  type RouteInput,
  type RoutedInstance,
  type RoutingRecord,
} from './route-state.js';

const inst = (id: string, over: Partial<RoutedInstance> = {}): RoutedInstance => ({
  id,
  service: 'kv',
  role: 'primary',
  slot: 0,
  host: 'local',
  phase: 'running',
  ports: { http: 4000 + Number(id.split('-')[1] ?? 0) },
  epoch: 0,
  ...over,
});

const base = (over: Partial<RouteInput> = {}): RouteInput => ({
  service: 'kv',
  storeEpoch: 0,
  routerEpoch: 0,
  instances: [],
  routing: { service: 'kv', hosts: { local: '127.0.0.1', far: '10.0.0.2' } },
  ...over,
});

describe('routeState', () => {
  it('serves the running primary of the service at its host address and port', () => {
    const s = routeState(
      base({
        instances: [
          inst('kv-1', { epoch: 0 }),
          inst('kv-2', { role: 'echo', slot: 1 }),
          inst('web-1', { service: 'web' }),
        ],
      }),
    );
    expect(s.serving).toEqual([{ id: 'kv-1', host: '127.0.0.1', port: 4001, epoch: 0 }]);
    expect(s.paused).toBe(false);
    expect(s.stale).toEqual([]);
  });

  it('switches to the primary of the newest epoch and refuses the deposed one of an older epoch', () => {
    const s = routeState(
      base({
        storeEpoch: 3,
        routerEpoch: 2,
        instances: [inst('kv-1', { epoch: 2 }), inst('kv-2', { epoch: 3, slot: 0 })],
      }),
    );
    expect(s.epoch).toBe(3);
    expect(s.serving.map((t) => t.id)).toEqual(['kv-2']);
    expect(s.stale).toEqual(['kv-1']);
  });

  it('never lowers the epoch: a store read older than the router (a lagging replica) keeps the router epoch', () => {
    const s = routeState(
      base({
        storeEpoch: 1,
        routerEpoch: 4,
        instances: [inst('kv-1', { epoch: 1 }), inst('kv-2', { epoch: 4 })],
      }),
    );
    expect(s.epoch).toBe(4);
    expect(s.serving.map((t) => t.id)).toEqual(['kv-2']);
    expect(s.stale).toEqual(['kv-1']);
  });

  it('serves nobody right after the epoch bump, until the promoted primary is recorded (fence first)', () => {
    const s = routeState(
      base({
        storeEpoch: 5,
        routerEpoch: 4,
        instances: [inst('kv-1', { epoch: 4 }), inst('kv-2', { role: 'echo', slot: 1, epoch: 4 })],
        intent: { service: 'kv', epoch: 4, next: 5 },
      }),
    );
    expect(s.serving).toEqual([]);
    expect(s.stale).toEqual(['kv-1']);
    expect(s.paused).toBe(true);
    expect(s.pauseCause).toBe('promotion');
  });

  it('holds mutations while a promotion intent of the current epoch is in flight, before the bump', () => {
    const s = routeState(
      base({
        storeEpoch: 2,
        routerEpoch: 2,
        instances: [inst('kv-1', { epoch: 2 })],
        intent: { service: 'kv', epoch: 2, next: 3 },
      }),
    );
    expect(s.paused).toBe(true);
    // The old primary still holds the current epoch: it is not fenced yet and keeps serving reads.
    expect(s.serving.map((t) => t.id)).toEqual(['kv-1']);
  });

  it('ignores (and reports) an intent from an older epoch: it belongs to a superseded promotion', () => {
    const s = routeState(
      base({
        storeEpoch: 6,
        routerEpoch: 6,
        instances: [inst('kv-1', { epoch: 6 })],
        intent: { service: 'kv', epoch: 3, next: 4 },
      }),
    );
    expect(s.paused).toBe(false);
    expect(s.staleIntent).toBe(true);
    expect(s.pauseCause).toBeUndefined();
  });

  it('holds mutations for a switchover pause through its own epoch bump, and ignores one from before it', () => {
    const routing = (epoch: number): RoutingRecord => ({
      service: 'kv',
      hosts: { local: '127.0.0.1' },
      pause: { epoch, at: 1, reason: 'switchover' },
    });
    const now = routeState(
      base({ storeEpoch: 2, routerEpoch: 2, instances: [inst('kv-1', { epoch: 2 })], routing: routing(2) }),
    );
    expect(now.paused).toBe(true);
    expect(now.pauseCause).toBe('switchover');
    // Written at epoch 1, before the switchover's own bump to 2: still in force.
    const bumped = routeState(
      base({ storeEpoch: 2, routerEpoch: 2, instances: [inst('kv-1', { epoch: 2 })], routing: routing(1) }),
    );
    expect(bumped.paused).toBe(true);
    expect(bumped.staleIntent).toBe(false);
    const old = routeState(
      base({ storeEpoch: 2, routerEpoch: 2, instances: [inst('kv-1', { epoch: 2 })], routing: routing(0) }),
    );
    expect(old.paused).toBe(false);
    expect(old.staleIntent).toBe(true);
  });

  it('lifts an expired pause but still never serves a primary of an older epoch', () => {
    const s = routeState(
      base({
        storeEpoch: 5,
        routerEpoch: 5,
        instances: [inst('kv-1', { epoch: 4 })],
        intent: { service: 'kv', epoch: 4, next: 5 },
        pauseExpired: true,
      }),
    );
    expect(s.paused).toBe(false);
    expect(s.pauseCause).toBe('promotion');
    expect(s.serving).toEqual([]);
  });

  it('orders a scaled serving set by slot and leaves out members that are not running', () => {
    const s = routeState(
      base({
        instances: [
          inst('kv-3', { slot: 2 }),
          inst('kv-1', { slot: 0 }),
          inst('kv-2', { slot: 1, phase: 'unhealthy' }),
          inst('kv-4', { slot: 3, host: 'far' }),
        ],
      }),
    );
    expect(s.serving.map((t) => `${t.id}@${t.host}`)).toEqual([
      'kv-1@127.0.0.1',
      'kv-3@127.0.0.1',
      'kv-4@10.0.0.2',
    ]);
  });

  it('routes to the named port, and reports instances whose host has no address instead of guessing one', () => {
    const s = routeState(
      base({
        portName: 'api',
        instances: [
          inst('kv-1', { ports: { admin: 9000, api: 9001 } }),
          inst('kv-2', { slot: 1, host: 'nowhere', ports: { api: 9002 } }),
        ],
      }),
    );
    expect(s.serving).toEqual([{ id: 'kv-1', host: '127.0.0.1', port: 9001, epoch: 0 }]);
    expect(s.unaddressed).toEqual(['kv-2']);
  });

  it('mirrors to running shadows only when the spec has shadows', () => {
    const instances = [inst('kv-1'), inst('kv-5', { role: 'shadow', slot: 5 })];
    expect(routeState(base({ instances })).shadows).toEqual([]);
    const s = routeState(base({ instances, shadows: { sample: 0.25 } }));
    expect(s.shadows.map((t) => t.id)).toEqual(['kv-5']);
    expect(s.sample).toBe(0.25);
  });

  it('property: never serves an instance of an older epoch than it reports, and never lowers the epoch', () => {
    const arbInst = fc.record({
      id: fc.constantFrom('kv-1', 'kv-2', 'kv-3', 'kv-4'),
      role: fc.constantFrom('primary' as const, 'echo' as const, 'shadow' as const),
      phase: fc.constantFrom('running', 'starting', 'fenced'),
      epoch: fc.nat(6),
      slot: fc.nat(3),
    });
    fc.assert(
      fc.property(
        fc.array(arbInst, { maxLength: 6 }),
        fc.nat(6),
        fc.nat(6),
        fc.option(fc.nat(6), { nil: undefined }),
        fc.boolean(),
        (recs, storeEpoch, routerEpoch, intentEpoch, expired) => {
          const s = routeState(
            base({
              storeEpoch,
              routerEpoch,
              instances: recs.map((r) => inst(r.id, r)),
              ...(intentEpoch !== undefined
                ? { intent: { service: 'kv', epoch: intentEpoch, next: intentEpoch + 1 } }
                : {}),
              pauseExpired: expired,
            }),
          );
          expect(s.epoch).toBe(Math.max(storeEpoch, routerEpoch));
          for (const t of s.serving) expect(t.epoch).toBeGreaterThanOrEqual(s.epoch);
          if (expired) expect(s.paused).toBe(false);
          if (intentEpoch !== undefined && intentEpoch + 1 < s.epoch) expect(s.paused).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('parsing stored records', () => {
  it('reads the router-relevant fields of an instance record and skips what is not one', () => {
    const rec = parseInstance(
      JSON.stringify({ ...inst('kv-1', { epoch: 2 }), pid: 7, stateDir: '/x', ports: { http: 1, bad: 'x' } }),
    );
    expect(rec).toEqual(inst('kv-1', { epoch: 2, ports: { http: 1 } }));
    expect(parseInstance('{"id":"kv-1"}')).toBeUndefined();
    expect(parseInstance('not json')).toBeUndefined();
  });

  it('reads intents and routing records, pause included', () => {
    expect(parseIntent(JSON.stringify({ service: 'kv', epoch: 1, next: 2, to: 'kv-2' }))).toEqual({
      service: 'kv',
      epoch: 1,
      next: 2,
    });
    expect(parseIntent('[]')).toBeUndefined();
    expect(
      parseRouting(
        JSON.stringify({
          service: 'kv',
          hosts: { a: '1.2.3.4', b: 5 },
          pause: { epoch: 3, at: 9, reason: 'r' },
        }),
      ),
    ).toEqual({ service: 'kv', hosts: { a: '1.2.3.4' }, pause: { epoch: 3, at: 9, reason: 'r' } });
    expect(parseRouting(JSON.stringify({ service: 'kv' }))).toBeUndefined();
  });
});
