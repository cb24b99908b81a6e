import { describe, expect, it } from 'vitest';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { DurableWaits } from './durable-waits.js';

/** A promise settled from outside, like a batch of the durable log. */
function batch(): { done: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve = (): void => undefined;
  let reject = (_: Error): void => undefined;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => undefined);
  return { done, resolve, reject };
}

describe('DurableWaits', () => {
  it('makes every seq of a log batch wait for that batch, and reports them durable once it is written', async () => {
    const waits = new DurableWaits();
    const a = batch();
    const b = batch();
    waits.track(1, a.done);
    waits.track(2, a.done);
    waits.track(3, b.done);
    const one = waits.of(1);
    const two = waits.of(2);
    const three = waits.of(3);
    expect(one).toBeInstanceOf(Promise);
    expect(two).toBe(one); // one wait per batch, not per write
    expect(three).not.toBe(one);
    a.resolve();
    expect(await one).toBeUndefined();
    expect(waits.of(1)).toBeUndefined();
    expect(waits.of(2)).toBeUndefined();
    expect(waits.of(3)).toBe(three);
    b.resolve();
    expect(await three).toBeUndefined();
    expect(waits.of(3)).toBeUndefined();
  });

  it("gives every seq of a failed batch the write's error with its code, also when asked after it failed", async () => {
    const waits = new DurableWaits();
    const a = batch();
    waits.track(7, a.done);
    waits.track(8, a.done);
    const pending = waits.of(8);
    a.reject(
      new UnderstudyError(ErrorCode.MutationLogWrite, 'cannot write mutations 7..8 (the disk is full)'),
    );
    const error = `${ErrorCode.MutationLogWrite}: cannot write mutations 7..8 (the disk is full)`;
    expect(await pending).toBe(error);
    expect(waits.of(7)).toBe(error);
    expect(waits.of(9)).toBeUndefined();
  });

  it('treats a seq it never tracked as durable', () => {
    expect(new DurableWaits().of(42)).toBeUndefined();
  });
});
