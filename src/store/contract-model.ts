import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { ContractContext } from './contract-support.js';
import type { StoreRecord } from './state-store.js';

type Expect = 'current' | 'stale' | 'absent';
type Op =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'delete'; key: string; expect?: Expect }
  | { kind: 'cas'; key: string; value: string; expect: Expect };

const keyArb = fc.constantFrom('a', 'b', 'a/b', 'a/c', 'é');
const valueArb = fc.string({ maxLength: 6 });
const expectArb = fc.constantFrom<Expect>('current', 'stale', 'absent');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), key: keyArb, value: valueArb }),
  fc.record({ kind: fc.constant('delete' as const), key: keyArb }),
  fc.record({ kind: fc.constant('delete' as const), key: keyArb, expect: expectArb }),
  fc.record({ kind: fc.constant('cas' as const), key: keyArb, value: valueArb, expect: expectArb }),
);

/** Property part of the contract: the store behaves like a plain map with revisions. */
export function describeModelContract(ctx: () => ContractContext): void {
  it('matches an in-memory model under random sequences of put, delete and compare-and-set', async () => {
    const { store, fixture } = ctx();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
        const prefix = `model/${run++}/`;
        const model = new Map<string, StoreRecord>();
        let last = await store.revision();

        /** The revision an op expects: the current one, a wrong one, or 0 ("must not exist"). */
        const expected = (key: string, how: Expect): number => {
          const current = model.get(key)?.revision ?? 0;
          if (how === 'current') return current;
          if (how === 'absent') return 0;
          return current > 0 ? current - 1 : Math.max(1, last);
        };
        const applyWrite = (key: string, value: string, written: StoreRecord | undefined): void => {
          expect(written).toBeDefined();
          const w = written as StoreRecord;
          expect(w.revision).toBeGreaterThan(last);
          last = w.revision;
          const before = model.get(key);
          const predicted: StoreRecord = {
            key,
            value,
            revision: w.revision,
            createRevision: before ? before.createRevision : w.revision,
            version: before ? before.version + 1 : 1,
          };
          expect(w).toEqual(predicted);
          model.set(key, predicted);
        };

        for (const op of ops) {
          const key = prefix + op.key;
          const current = model.get(key)?.revision ?? 0;
          if (op.kind === 'put') {
            applyWrite(key, op.value, await store.put(key, op.value));
          } else if (op.kind === 'cas') {
            const want = expected(key, op.expect);
            const result = await store.compareAndSet(key, op.value, { expectedRevision: want });
            if (want === current) applyWrite(key, op.value, result);
            else expect(result).toBeUndefined();
          } else {
            const want = op.expect === undefined ? undefined : expected(key, op.expect);
            const deleted = await store.delete(key, want === undefined ? {} : { expectedRevision: want });
            const shouldDelete = current !== 0 && (want === undefined || want === current);
            expect(deleted).toBe(shouldDelete);
            if (shouldDelete) {
              model.delete(key);
              const now = await store.revision();
              expect(now).toBeGreaterThan(last);
              last = now;
            }
          }
        }
        const expectedList = [...model.values()].sort((x, y) =>
          Buffer.compare(Buffer.from(x.key), Buffer.from(y.key)),
        );
        expect(await store.list(prefix)).toEqual(expectedList);
        for (const key of ['a', 'b', 'a/b', 'a/c', 'é']) {
          expect(await store.get(prefix + key)).toEqual(model.get(prefix + key));
        }
      }),
      { numRuns: fixture.modelRuns ?? 60 },
    );
  });
}
