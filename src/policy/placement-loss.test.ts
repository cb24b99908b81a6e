import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PlacementHost, PlacementInstance } from './placement.js';
import { planHostLoss } from './placement-loss.js';

const GiB = 1024 ** 3;
const host = (name: string, zone: string, over: Partial<PlacementHost> = {}): PlacementHost => ({
  name,
  zone,
  state: 'up',
  cores: 4,
  memoryBytes: 8 * GiB,
  usedCores: 0,
  usedMemoryBytes: 0,
  ...over,
});
const inst = (
  id: string,
  service: string,
  role: PlacementInstance['role'],
  h: string,
): PlacementInstance => ({
  id,
  service,
  role,
  host: h,
  cores: 1,
  memoryBytes: GiB,
});

describe('planHostLoss', () => {
  it('promotes the echo of a lost primary and gives the new primary an echo on another host', () => {
    const hosts = [host('a1', 'a'), host('b1', 'b'), host('c1', 'c')];
    const instances = [inst('kv-0', 'kv', 'primary', 'a1'), inst('kv-1', 'kv', 'echo', 'b1')];
    const plan = planHostLoss({ hosts, instances, lost: 'a1', at: 5 });
    expect(plan.steps[0]).toEqual({
      action: 'promote-echo',
      instance: 'kv-0',
      service: 'kv',
      echo: 'kv-1',
      host: 'b1',
    });
    const re = plan.steps[1];
    expect(re?.action).toBe('recreate');
    if (re?.action === 'recreate') {
      expect(re.placement.host).toBe('c1'); // not a1 (lost), not b1 (the new primary's host)
      expect(re.role).toBe('echo');
    }
    expect(plan.unplaced).toBe(0);
  });

  it('re-creates the lost host’s echoes off their primaries’ hosts and its shadows in their zone', () => {
    const hosts = [host('a1', 'a'), host('a2', 'a'), host('b1', 'b'), host('b2', 'b')];
    const instances = [
      inst('kv-0', 'kv', 'primary', 'a1'),
      inst('kv-1', 'kv', 'echo', 'b1'),
      inst('kv-s', 'kv', 'shadow', 'b1'),
      inst('web-0', 'web', 'primary', 'b2'),
    ];
    const plan = planHostLoss({ hosts, instances, lost: 'b1', at: 0 });
    const byInstance = new Map(plan.steps.map((s) => [s.instance, s]));
    const echo = byInstance.get('kv-1');
    const shadow = byInstance.get('kv-s');
    expect(echo?.action === 'recreate' && echo.placement.host).toBe('b2'); // another zone than a1's
    expect(shadow?.action === 'recreate' && shadow.placement.zone).toBe('a'); // the live primary's zone
  });

  it('never plans more onto a host than it has room for, counting its own earlier placements', () => {
    const hosts = [host('a1', 'a', { cores: 10 }), host('b1', 'b', { cores: 2, usedCores: 0 })];
    const instances = [
      inst('p', 'kv', 'primary', 'a1'),
      ...Array.from({ length: 4 }, (_, i) => inst(`w${i}`, 'kv', 'warm', 'c1')),
    ];
    const plan = planHostLoss({ hosts: [...hosts, host('c1', 'c')], instances, lost: 'c1', at: 0 });
    const onB = plan.steps.filter((s) => s.action === 'recreate' && s.placement.host === 'b1');
    expect(onB.length).toBeLessThanOrEqual(2);
    expect(plan.unplaced).toBe(0);
  });

  it('says a lost primary without an echo elsewhere has nothing to promote', () => {
    const plan = planHostLoss({
      hosts: [host('a1', 'a'), host('b1', 'b')],
      instances: [inst('p', 'kv', 'primary', 'a1')],
      lost: 'a1',
      at: 0,
    });
    expect(plan.steps).toEqual([{ action: 'no-echo', instance: 'p', service: 'kv' }]);
  });

  it('leaves its input untouched', () => {
    const instances = [inst('kv-0', 'kv', 'primary', 'a1'), inst('kv-1', 'kv', 'echo', 'b1')];
    const copy = structuredClone(instances);
    planHostLoss({ hosts: [host('a1', 'a'), host('b1', 'b')], instances, lost: 'a1', at: 0 });
    expect(instances).toEqual(copy);
  });

  it('keeps every host within capacity and off the lost host, whatever the cluster (property)', () => {
    const arb = fc.record({
      hosts: fc.integer({ min: 2, max: 5 }),
      instances: fc.array(
        fc.record({
          host: fc.integer({ min: 0, max: 4 }),
          role: fc.constantFrom<PlacementInstance['role']>('primary', 'echo', 'shadow', 'warm'),
          service: fc.constantFrom('kv', 'web'),
          cores: fc.integer({ min: 1, max: 2 }),
        }),
        { maxLength: 12 },
      ),
    });
    fc.assert(
      fc.property(arb, ({ hosts: n, instances: raw }) => {
        const hosts = Array.from({ length: n }, (_, i) => host(`h${i}`, ['a', 'b'][i % 2] as string));
        const instances = raw.map((r, i) => ({
          id: `i${i}`,
          service: r.service,
          role: r.role,
          host: `h${r.host % n}`,
          cores: r.cores,
          memoryBytes: GiB,
        }));
        for (const h of hosts)
          h.usedCores = instances.filter((i) => i.host === h.name).reduce((a, i) => a + i.cores, 0);
        const plan = planHostLoss({ hosts, instances, lost: 'h0', at: 0 });
        for (const s of plan.steps) if (s.action === 'recreate') expect(s.placement.host).not.toBe('h0');
        const promoted = plan.steps.flatMap((s) => (s.action === 'promote-echo' ? [s.echo] : []));
        for (const e of promoted) expect(instances.map((i) => i.id)).toContain(e); // only echoes that hold data
        for (const h of hosts) {
          const plannedCores = plan.steps
            .filter((s) => s.action === 'recreate' && s.placement.host === h.name)
            .reduce((a, s) => a + (s.action === 'recreate' ? Number(s.placement.inputs.needCores) : 0), 0);
          if (h.usedCores <= h.cores) expect(h.usedCores + plannedCores).toBeLessThanOrEqual(h.cores);
        }
      }),
      { numRuns: 200 },
    );
  });
});
