import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';

describe('ManualClock', () => {
  it('fires due timers in time order when advanced, and not before', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.setTimer(() => fired.push('b@20'), 20);
    clock.setTimer(() => fired.push('a@10'), 10);
    const cancel = clock.setTimer(() => fired.push('cancelled'), 15);
    cancel();
    clock.advance(9);
    expect(fired).toEqual([]);
    clock.advance(11);
    expect(fired).toEqual(['a@10', 'b@20']);
    expect(clock.now()).toBe(20);
    expect(clock.pendingTimers).toBe(0);
  });

  it('moves virtual time forward by what is slept, firing timers on the way', async () => {
    const clock = new ManualClock(1000);
    let fired = false;
    clock.setTimer(() => (fired = true), 5000);
    await clock.sleep(10_000);
    expect(clock.now()).toBe(11_000);
    expect(fired).toBe(true);
  });
});
