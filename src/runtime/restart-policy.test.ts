import { describe, expect, it } from 'vitest';
import { isFailedExit, nextRestartDelay, resolveRestartPolicy } from './restart-policy.js';

const failed = { code: 1, signal: null } as const;
const clean = { code: 0, signal: null } as const;
const killed = { code: null, signal: 'SIGKILL' } as const;

describe('nextRestartDelay', () => {
  const policy = resolveRestartPolicy({
    mode: 'always',
    maxRestarts: 3,
    windowMs: 10_000,
    backoff: { initialMs: 100, maxMs: 250, multiplier: 2 },
  });

  it('restarts after the initial delay when nothing restarted recently', () => {
    expect(nextRestartDelay(policy, [], failed, 50_000)).toBe(100);
  });

  it('grows the delay with every restart in the window and caps it at maxMs', () => {
    expect(nextRestartDelay(policy, [49_000], failed, 50_000)).toBe(200);
    expect(nextRestartDelay(policy, [48_000, 49_000], failed, 50_000)).toBe(250);
  });

  it('gives up once maxRestarts restarts happened within the window', () => {
    expect(nextRestartDelay(policy, [47_000, 48_000, 49_000], failed, 50_000)).toBeUndefined();
  });

  it('forgives restarts older than the window', () => {
    expect(nextRestartDelay(policy, [1_000, 2_000, 3_000], failed, 50_000)).toBe(100);
    expect(nextRestartDelay(policy, [39_999, 45_000], failed, 50_000)).toBe(200);
  });

  it('ignores history entries from the future', () => {
    expect(nextRestartDelay(policy, [60_000, 61_000, 62_000], failed, 50_000)).toBe(100);
  });

  it('restarts a clean exit under always', () => {
    expect(nextRestartDelay(policy, [], clean, 0)).toBe(100);
  });

  it('does not restart a clean exit under on-failure but does restart a failure or a signal', () => {
    const onFailure = { ...policy, mode: 'on-failure' as const };
    expect(nextRestartDelay(onFailure, [], clean, 0)).toBeUndefined();
    expect(nextRestartDelay(onFailure, [], failed, 0)).toBe(100);
    expect(nextRestartDelay(onFailure, [], killed, 0)).toBe(100);
  });

  it('never restarts under never', () => {
    expect(nextRestartDelay({ ...policy, mode: 'never' }, [], failed, 0)).toBeUndefined();
  });

  it('gives up immediately when maxRestarts is zero', () => {
    expect(nextRestartDelay({ ...policy, maxRestarts: 0 }, [], failed, 0)).toBeUndefined();
  });
});

describe('resolveRestartPolicy', () => {
  it('fills documented defaults and keeps given values', () => {
    expect(resolveRestartPolicy()).toEqual({
      mode: 'on-failure',
      maxRestarts: 5,
      windowMs: 60_000,
      backoff: { initialMs: 100, maxMs: 10_000, multiplier: 2 },
    });
    expect(resolveRestartPolicy({ backoff: { maxMs: 7 } }).backoff).toEqual({
      initialMs: 100,
      maxMs: 7,
      multiplier: 2,
    });
  });
});

describe('isFailedExit', () => {
  it('treats a zero code without signal as clean and everything else as failure', () => {
    expect(isFailedExit(clean)).toBe(false);
    expect(isFailedExit(failed)).toBe(true);
    expect(isFailedExit(killed)).toBe(true);
  });
});
