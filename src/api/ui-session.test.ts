import { describe, expect, it } from 'vitest';
import { cookieValue, UiSessions } from './ui-session.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('UiSessions', () => {
  it('exchanges a login code once for a session secret that is not the code', () => {
    const c = clock();
    const s = new UiSessions({ now: c.now });
    const { code, expiresAt } = s.issueCode();
    expect(expiresAt).toBe(c.now() + 60_000);
    const session = s.redeem(code);
    expect(session).toBeDefined();
    expect(session).not.toBe(code);
    expect(s.valid(session)).toBe(true);
    expect(s.redeem(code)).toBeUndefined();
  });

  it('refuses a code after its lifetime, and an unknown one', () => {
    const c = clock();
    const s = new UiSessions({ now: c.now, loginCodeTtlMs: 60_000 });
    const { code } = s.issueCode();
    c.advance(60_000);
    expect(s.redeem(code)).toBeUndefined();
    expect(s.redeem('made-up')).toBeUndefined();
    expect(s.valid('made-up')).toBe(false);
    expect(s.valid(undefined)).toBe(false);
  });

  it('ends a session after its lifetime', () => {
    const c = clock();
    const s = new UiSessions({ now: c.now, sessionTtlMs: 10_000 });
    const session = s.redeem(s.issueCode().code)!;
    c.advance(9_999);
    expect(s.valid(session)).toBe(true);
    c.advance(1);
    expect(s.valid(session)).toBe(false);
  });

  it('holds at most maxSessions, ending the oldest', () => {
    const s = new UiSessions({ maxSessions: 2 });
    const [a, b, c] = [0, 1, 2].map(() => s.redeem(s.issueCode().code)!);
    expect([a, b, c].map((x) => s.valid(x))).toEqual([false, true, true]);
  });

  it('sets an HttpOnly, SameSite=Strict cookie for the whole site', () => {
    const s = new UiSessions({ sessionTtlMs: 3_600_000 });
    expect(s.cookie('abc')).toBe('understudy_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600');
  });
});

describe('cookieValue', () => {
  it('finds one cookie among several, and nothing in a missing header', () => {
    expect(cookieValue('a=1; understudy_session=xyz; b=2', 'understudy_session')).toBe('xyz');
    expect(cookieValue('xunderstudy_session=1', 'understudy_session')).toBeUndefined();
    expect(cookieValue(undefined, 'a')).toBeUndefined();
  });
});
