import { describe, expect, it } from 'vitest';
import { serviceSchema } from '../config/index.js';
import { recycleVerdict, settleWindowMs } from './profile-recycle.js';
import type { InstanceRecord, InstanceRole } from './records.js';

const spec = (echo: Record<string, unknown> = { count: 1, mode: 'warm' }) =>
  serviceSchema.parse({
    name: 'api',
    command: ['node'],
    ports: { http: 0 },
    echo,
    shadow: { count: 1 },
    routing: { listen: '127.0.0.1:0', slowStart: '2s' },
    health: { http: { path: '/healthz' }, interval: '250ms' },
  });
let n = 0;
const rec = (
  role: InstanceRole,
  startedAt: number,
  phase: InstanceRecord['phase'] = 'running',
): InstanceRecord => ({
  id: `api-${++n}`,
  service: 'api',
  role,
  slot: n,
  host: 'local',
  phase,
  ports: {},
  stateDir: '/nonexistent',
  restarts: [],
  limits: {},
  epoch: 0,
  startedAt,
});
const FED_AT = 10_000;

describe('recycling the shadow that fed a new serving instance', () => {
  it('recycles it into the warm pool when the pool, without refills started since the feed, is below its target', () => {
    const shadow = rec('shadow', 0);
    const refill = rec('echo', FED_AT + 500, 'starting'); // the reconciler's cold refill
    const v = recycleVerdict(
      spec(),
      shadow,
      [rec('primary', 0), shadow, refill],
      { serving: 2, echoes: 1, shadows: 1 },
      FED_AT,
    );
    expect(v.action).toBe('recycle');
    expect(v.reason).toMatch(/target is 1 echo\(es\) and 0 stood by before the feed/);
  });

  it('terminates it when the pool is full and it is a shadow more than wanted (a spike shadow)', () => {
    const shadow = rec('shadow', 0);
    const all = [rec('primary', 0), rec('echo', 0), rec('shadow', 0), shadow];
    expect(recycleVerdict(spec(), shadow, all, { serving: 1, echoes: 1, shadows: 1 }, FED_AT).action).toBe(
      'terminate',
    );
  });

  it('keeps it as a shadow when the pool is full and the spec wants it', () => {
    const shadow = rec('shadow', 0);
    const all = [rec('primary', 0), rec('echo', 0), shadow];
    const v = recycleVerdict(spec(), shadow, all, { serving: 1, echoes: 1, shadows: 1 }, FED_AT);
    expect(v).toMatchObject({ action: 'keep', reason: expect.stringMatching(/stays a shadow/) });
  });

  it('never recycles into a cold pool (its echoes run no process)', () => {
    const shadow = rec('shadow', 0);
    const v = recycleVerdict(
      spec({ count: 1, mode: 'cold' }),
      shadow,
      [shadow],
      { serving: 1, echoes: 1, shadows: 1 },
      FED_AT,
    );
    expect(v.action).not.toBe('recycle');
  });

  it('waits the ramp plus two health-check intervals before the fed instance counts as operational', () => {
    expect(settleWindowMs(spec())).toBe(2000 + 2 * 250);
  });
});
