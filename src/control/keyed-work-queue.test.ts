import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyedWorkQueue } from './keyed-work-queue.js';

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('KeyedWorkQueue', () => {
  it('never runs two items of one key at once, and runs them in the order queued', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c'), fail: fc.boolean(), yields: fc.nat(3) }), {
          maxLength: 30,
        }),
        async (items) => {
          const q = new KeyedWorkQueue();
          const active = new Map<string, number>();
          const order = new Map<string, number[]>();
          let overlap = false;
          await Promise.allSettled(
            items.map((item, i) =>
              q.run(item.key, 'work', async () => {
                active.set(item.key, (active.get(item.key) ?? 0) + 1);
                if ((active.get(item.key) ?? 0) > 1) overlap = true;
                order.set(item.key, [...(order.get(item.key) ?? []), i]);
                for (let y = 0; y < item.yields; y++) await Promise.resolve();
                active.set(item.key, (active.get(item.key) ?? 1) - 1);
                if (item.fail) throw new Error('boom');
              }),
            ),
          );
          expect(overlap).toBe(false);
          for (const [key, seen] of order) {
            const queued = items.flatMap((it, i) => (it.key === key ? [i] : []));
            expect(seen).toEqual(queued);
          }
          for (const key of ['a', 'b', 'c']) expect(q.busy(key)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('runs different keys concurrently, reports what holds a key, and refuses tryRun on a busy key', async () => {
    const q = new KeyedWorkQueue();
    const g = gate();
    const promotion = q.run('kv', 'promotion', () => g.promise);
    const other = q.tryRun('web', 'scaling', () => Promise.resolve('web ran'));
    expect(await other).toBe('web ran');
    await Promise.resolve();
    expect(q.busy('kv')).toBe(true);
    expect(q.holder('kv')).toBe('promotion');
    expect(q.has('kv', 'promotion')).toBe(true);
    expect(q.has('kv', 'scaling')).toBe(false);
    expect(q.tryRun('kv', 'promotion', () => Promise.resolve('second'))).toBeUndefined();
    g.open();
    await promotion;
    await Promise.resolve();
    expect(q.busy('kv')).toBe(false);
    expect(q.has('kv', 'promotion')).toBe(false);
    expect(await q.tryRun('kv', 'promotion', () => Promise.resolve('now'))).toBe('now');
  });

  it('a failed item rejects its own caller only; the next item on the key still runs', async () => {
    const q = new KeyedWorkQueue();
    const first = q.run('kv', 'a', () => Promise.reject(new Error('boom')));
    const second = q.run('kv', 'b', () => Promise.resolve(2));
    await expect(first).rejects.toThrow('boom');
    expect(await second).toBe(2);
  });
});
