import { describe, expect, it, vi } from 'vitest';
import { SeqWaiters } from './seq-waiters.js';

describe('SeqWaiters', () => {
  it('resolves every waiter of a seq true when it is settled, and leaves the others waiting', async () => {
    const waiters = new SeqWaiters();
    const a = waiters.wait(1, 10_000);
    const b = waiters.wait(1, 10_000);
    let other: boolean | undefined;
    void waiters.wait(2, 10_000).then((v) => (other = v));
    waiters.settle(1);
    expect(await Promise.all([a, b])).toEqual([true, true]);
    await Promise.resolve();
    expect(other).toBeUndefined();
    waiters.settleAll(false);
    await Promise.resolve();
    expect(other).toBe(false);
  });

  it('gives up at the deadline: the waiter resolves false after onTimeout is told its seq; a later settle changes nothing', async () => {
    vi.useFakeTimers();
    try {
      const timedOut: number[] = [];
      const waiters = new SeqWaiters((seq) => timedOut.push(seq));
      const first = waiters.wait(1, 100);
      const second = waiters.wait(2, 300);
      // A shorter timeout than an earlier waiter's still fires on time (a timer of its own).
      const short = waiters.wait(3, 50);
      await vi.advanceTimersByTimeAsync(60);
      expect(timedOut).toEqual([3]);
      await vi.advanceTimersByTimeAsync(50);
      expect(timedOut).toEqual([3, 1]);
      waiters.settle(2);
      expect(await Promise.all([first, second, short])).toEqual([false, true, false]);
      await vi.advanceTimersByTimeAsync(500);
      expect(timedOut).toEqual([3, 1]);
      waiters.settle(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
