import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fits,
  place,
  type PlacementHost,
  type PlacementInstance,
  type PlacementRequest,
} from './placement.js';

const GiB = 1024 ** 3;
const host = (name: string, zone: string, over: Partial<PlacementHost> = {}): PlacementHost => ({
  name,
  zone,
  state: 'up',
  cores: 8,
  memoryBytes: 16 * GiB,
  usedCores: 0,
  usedMemoryBytes: 0,
  ...over,
});
const inst = (
  id: string,
  hostName: string,
  role: PlacementInstance['role'] = 'primary',
): PlacementInstance => ({
  id,
  service: 'kv',
  role,
  host: hostName,
  cores: 1,
  memoryBytes: GiB,
});
const need = { cores: 1, memoryBytes: GiB };

describe('place', () => {
  it('puts an echo on another host in another zone than its primary', () => {
    const d = place({
      hosts: [host('a1', 'a'), host('a2', 'a'), host('b1', 'b')],
      instances: [inst('p', 'a1')],
      request: { kind: 'echo', primary: 'p' },
      need,
      at: 1,
    });
    expect(d).toMatchObject({ kind: 'place', applied: true, host: 'b1', zone: 'b', at: 1 });
    expect(d.reason).toContain('another host and zone');
  });

  it('keeps the echo off its primary’s host even when only the same zone has room', () => {
    const d = place({
      hosts: [host('a1', 'a'), host('a2', 'a'), host('b1', 'b', { usedCores: 8 })],
      instances: [inst('p', 'a1')],
      request: { kind: 'echo', primary: 'p' },
      need,
      at: 0,
    });
    expect(d.host).toBe('a2');
    expect(d.reason).toContain('no other zone has room');
  });

  it('shares the primary’s host only when no other host has room, and says so', () => {
    const d = place({
      hosts: [host('a1', 'a'), host('b1', 'b', { usedMemoryBytes: 16 * GiB })],
      instances: [inst('p', 'a1')],
      request: { kind: 'echo', primary: 'p' },
      need,
      at: 0,
    });
    expect(d.host).toBe('a1');
    expect(d.reason).toContain("shares its primary's host");
  });

  it('keeps a shadow in its live instance’s zone, on another host there when one has room', () => {
    const hosts = [host('a1', 'a'), host('a2', 'a', { usedCores: 6 }), host('b1', 'b')];
    const d = place({
      hosts,
      instances: [inst('l', 'a1')],
      request: { kind: 'shadow', live: 'l' },
      need,
      at: 0,
    });
    expect(d).toMatchObject({ applied: true, host: 'a2', zone: 'a' });
  });

  it('spreads a zone’s shadow pool over its hosts: a second shadow goes to the host without one', () => {
    const hosts = [host('a1', 'a'), host('a2', 'a'), host('a3', 'a', { usedCores: 1 }), host('b1', 'b')];
    const d = place({
      hosts,
      instances: [inst('l', 'a1'), inst('s', 'a2', 'shadow')],
      request: { kind: 'shadow', live: 'l' },
      need,
      at: 0,
    });
    expect(d).toMatchObject({ applied: true, host: 'a3', zone: 'a' });
  });

  it('refuses a shadow when its zone is full rather than leaving the zone', () => {
    const hosts = [host('a1', 'a', { usedCores: 8 }), host('b1', 'b')];
    const d = place({
      hosts,
      instances: [inst('l', 'a1')],
      request: { kind: 'shadow', live: 'l' },
      need,
      at: 0,
    });
    expect(d.applied).toBe(false);
    expect(d.host).toBeUndefined();
    expect(d.reason).toContain('zone a');
  });

  it('moves a migrating instance to another host, avoiding its echo’s host', () => {
    const hosts = [host('a1', 'a'), host('a2', 'a'), host('b1', 'b')];
    const instances = [inst('p', 'a1'), inst('e', 'b1', 'echo')];
    const d = place({ hosts, instances, request: { kind: 'migration', instance: 'p' }, need, at: 0 });
    expect(d.host).toBe('a2');
  });

  it('refuses a migration when only the instance’s own host has room', () => {
    const hosts = [host('a1', 'a'), host('b1', 'b', { state: 'draining' })];
    const d = place({
      hosts,
      instances: [inst('p', 'a1')],
      request: { kind: 'migration', instance: 'p' },
      need,
      at: 0,
    });
    expect(d.applied).toBe(false);
    expect(d.reason).toContain('no host other than a1');
  });

  it('spreads warm-pool echoes across zones', () => {
    const hosts = [host('a1', 'a'), host('a2', 'a'), host('b1', 'b'), host('c1', 'c')];
    const instances: PlacementInstance[] = [inst('p', 'a1')];
    const zones: string[] = [];
    for (let i = 0; i < 3; i++) {
      const d = place({ hosts, instances, request: { kind: 'warm-pool', service: 'kv' }, need, at: i });
      zones.push(d.zone ?? '?');
      instances.push(inst(`w${i}`, d.host ?? '?', 'warm'));
    }
    expect(zones.slice(0, 2).sort()).toEqual(['b', 'c']);
    expect(new Set(zones).size).toBe(3);
  });

  it('places a new primary in the zone holding fewest of its service, then on the least used host', () => {
    const hosts = [host('a1', 'a'), host('a2', 'a'), host('b1', 'b')];
    const first = place({ hosts, instances: [], request: { kind: 'primary', service: 'kv' }, need, at: 0 });
    expect(first).toMatchObject({ applied: true, host: 'a1' });
    const second = place({
      hosts,
      instances: [inst('p', 'a1')],
      request: { kind: 'primary', service: 'kv' },
      need,
      at: 0,
    });
    expect(second).toMatchObject({ applied: true, host: 'b1', zone: 'b' });
    expect(second.reason).toContain('zone b holds 0');
  });

  it('refuses with the reason when no host is up or none has room', () => {
    const down = place({
      hosts: [host('a1', 'a', { state: 'down' })],
      instances: [],
      request: { kind: 'warm-pool', service: 'kv' },
      need,
      at: 0,
    });
    expect(down).toMatchObject({ applied: false, reason: 'no host is up (1 known)' });
    const full = place({
      hosts: [host('a1', 'a', { usedCores: 7.5 })],
      instances: [],
      request: { kind: 'warm-pool', service: 'kv' },
      need,
      at: 0,
    });
    expect(full.applied).toBe(false);
    expect(full.reason).toContain('no host has room for 1 cores');
  });

  it('refuses a request about an instance it does not know', () => {
    const d = place({
      hosts: [host('a1', 'a')],
      instances: [],
      request: { kind: 'echo', primary: 'nope' },
      need,
      at: 0,
    });
    expect(d).toMatchObject({ applied: false, reason: "no instance 'nope' to place relative to" });
  });

  it('breaks ties by utilisation, then by host name', () => {
    const hosts = [host('b2', 'b'), host('b1', 'b'), host('b3', 'b', { usedCores: 4 })];
    const d = place({
      hosts,
      instances: [inst('p', 'x')],
      request: { kind: 'echo', primary: 'p' },
      need,
      at: 0,
    });
    expect(d.host).toBe('b1');
  });
});

// Properties over random clusters: 1-6 hosts in up to 3 zones, random load and states.
const arbHost = (i: number): fc.Arbitrary<PlacementHost> =>
  fc.record({
    name: fc.constant(`h${i}`),
    zone: fc.constantFrom('a', 'b', 'c'),
    state: fc.constantFrom<PlacementHost['state']>('up', 'up', 'up', 'suspect', 'down'),
    cores: fc.integer({ min: 1, max: 16 }),
    memoryBytes: fc.integer({ min: 1, max: 32 }).map((g) => g * GiB),
    usedCores: fc.integer({ min: 0, max: 16 }),
    usedMemoryBytes: fc.integer({ min: 0, max: 32 }).map((g) => g * GiB),
  });
const arbCluster = fc
  .integer({ min: 1, max: 6 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbHost(i))))
  .chain((hosts) =>
    fc.record({
      hosts: fc.constant(hosts),
      primaryHost: fc.integer({ min: 0, max: hosts.length - 1 }).map((i) => hosts[i]?.name ?? 'h0'),
      need: fc.record({
        cores: fc.integer({ min: 0, max: 4 }),
        memoryBytes: fc.integer({ min: 0, max: 4 }).map((g) => g * GiB),
      }),
      kind: fc.constantFrom<PlacementRequest['kind']>('echo', 'shadow', 'warm-pool', 'primary', 'migration'),
    }),
  );
const requestOf = (kind: PlacementRequest['kind']): PlacementRequest =>
  kind === 'echo'
    ? { kind, primary: 'p' }
    : kind === 'shadow'
      ? { kind, live: 'p' }
      : kind === 'migration'
        ? { kind, instance: 'p' }
        : { kind, service: 'kv' };

describe('place (properties)', () => {
  it('never places on a host without room, nor on a host that is not up', () => {
    fc.assert(
      fc.property(arbCluster, ({ hosts, primaryHost, need: n, kind }) => {
        const d = place({
          hosts,
          instances: [inst('p', primaryHost)],
          request: requestOf(kind),
          need: n,
          at: 0,
        });
        if (!d.applied) return;
        const h = hosts.find((x) => x.name === d.host);
        expect(h?.state).toBe('up');
        expect(h && fits(h, n)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('places an echo off its primary’s host whenever another host is up and has room', () => {
    fc.assert(
      fc.property(arbCluster, ({ hosts, primaryHost, need: n }) => {
        const d = place({
          hosts,
          instances: [inst('p', primaryHost)],
          request: { kind: 'echo', primary: 'p' },
          need: n,
          at: 0,
        });
        const others = hosts.filter((h) => h.name !== primaryHost && h.state === 'up' && fits(h, n));
        if (others.length > 0) expect(d.host).not.toBe(primaryHost);
        const otherZone = others.filter((h) => h.zone !== hosts.find((x) => x.name === primaryHost)?.zone);
        if (otherZone.length > 0) expect(otherZone.map((h) => h.name)).toContain(d.host);
      }),
      { numRuns: 300 },
    );
  });

  it('places a shadow only in its live instance’s zone, and a migration never on the same host', () => {
    fc.assert(
      fc.property(arbCluster, ({ hosts, primaryHost, need: n }) => {
        const zone = hosts.find((h) => h.name === primaryHost)?.zone;
        const s = place({
          hosts,
          instances: [inst('p', primaryHost)],
          request: { kind: 'shadow', live: 'p' },
          need: n,
          at: 0,
        });
        if (s.applied) expect(s.zone).toBe(zone);
        else expect(hosts.some((h) => h.zone === zone && h.state === 'up' && fits(h, n))).toBe(false);
        const m = place({
          hosts,
          instances: [inst('p', primaryHost)],
          request: { kind: 'migration', instance: 'p' },
          need: n,
          at: 0,
        });
        if (m.applied) expect(m.host).not.toBe(primaryHost);
      }),
      { numRuns: 300 },
    );
  });

  it('spreads warm-pool echoes so that zones differ by at most one when every host has room', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 9 }),
        (zones, count) => {
          const hosts = zones.map((z, i) => host(`h${i}`, z, { cores: 100, memoryBytes: 100 * GiB }));
          const instances: PlacementInstance[] = [];
          for (let i = 0; i < count; i++) {
            const d = place({ hosts, instances, request: { kind: 'warm-pool', service: 'kv' }, need, at: i });
            instances.push(inst(`w${i}`, d.host ?? '?', 'warm'));
          }
          const perZone = [...new Set(zones)].map(
            (z) => instances.filter((i) => hosts.find((h) => h.name === i.host)?.zone === z).length,
          );
          expect(Math.max(...perZone) - Math.min(...perZone)).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('decides the same whatever order the hosts come in', () => {
    fc.assert(
      fc.property(arbCluster, fc.integer(), ({ hosts, primaryHost, need: n, kind }, seed) => {
        const shuffled = [...hosts].sort(
          (a, b) => ((a.name.charCodeAt(1) * seed) % 7) - ((b.name.charCodeAt(1) * seed) % 7),
        );
        const one = place({
          hosts,
          instances: [inst('p', primaryHost)],
          request: requestOf(kind),
          need: n,
          at: 0,
        });
        const two = place({
          hosts: shuffled,
          instances: [inst('p', primaryHost)],
          request: requestOf(kind),
          need: n,
          at: 0,
        });
        expect(two.host).toBe(one.host);
      }),
      { numRuns: 200 },
    );
  });
});
