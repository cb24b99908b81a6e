import { describe, expect, it } from 'vitest';
import {
  applyTransition,
  INSTANCE_EVENTS,
  INSTANCE_PHASES,
  INSTANCE_ROLES,
  transition,
  type InstanceEvent,
  type TransitionRefusal,
} from './instance-transition.js';
import type { InstancePhase, InstanceRecord, InstanceRole } from './records.js';

/** Phase letters, in the order of the columns below. */
const LETTER: Record<string, InstancePhase> = {
  s: 'starting',
  r: 'running',
  u: 'unhealthy',
  e: 'exited',
  f: 'failed',
  x: 'stopped',
  F: 'fenced',
  b: 'standby',
};
const COLUMNS = 'sruefxFb';

/**
 * The expected table, written out by hand: for each event and role, one cell per phase (columns
 * starting, running, unhealthy, exited, failed, stopped, fenced, standby): `-` is refused, a letter is
 * the phase after the event; and the role after it.
 */
const TABLE: Record<InstanceEvent, Record<InstanceRole, [cells: string, role: InstanceRole]>> = {
  launch: { primary: ['s--s-s-s', 'primary'], echo: ['s--s-s-s', 'echo'], shadow: ['s--s-s-s', 'shadow'] },
  ready: { primary: ['rrr-----', 'primary'], echo: ['rrr-----', 'echo'], shadow: ['rrr-----', 'shadow'] },
  unhealthy: { primary: ['uuu-----', 'primary'], echo: ['uuu-----', 'echo'], shadow: ['uuu-----', 'shadow'] },
  exit: { primary: ['eeee--e-', 'primary'], echo: ['eeee--e-', 'echo'], shadow: ['eeee--e-', 'shadow'] },
  fail: { primary: ['ffffffff', 'primary'], echo: ['ffffffff', 'echo'], shadow: ['ffffffff', 'shadow'] },
  stop: { primary: ['xxxxxxxx', 'primary'], echo: ['xxxxxxxx', 'echo'], shadow: ['xxxxxxxx', 'shadow'] },
  adopt: { primary: ['ssss--s-', 'primary'], echo: ['ssss--s-', 'echo'], shadow: ['ssss--s-', 'shadow'] },
  promote: {
    primary: ['srue--Fb', 'primary'],
    echo: ['srue--Fb', 'primary'],
    shadow: ['--------', 'shadow'],
  },
  demote: { primary: ['sruefxFb', 'echo'], echo: ['--------', 'echo'], shadow: ['--------', 'shadow'] },
  fence: { primary: ['FFFFFFFF', 'echo'], echo: ['--------', 'echo'], shadow: ['--------', 'shadow'] },
  standby: { primary: ['--------', 'primary'], echo: ['bbbb-b-b', 'echo'], shadow: ['--------', 'shadow'] },
  provision: { primary: ['--------', 'primary'], echo: ['s--e-x--', 'echo'], shadow: ['--------', 'shadow'] },
  'step-down': { primary: ['xxxxxxxx', 'echo'], echo: ['xxxxxxxx', 'echo'], shadow: ['--------', 'shadow'] },
  recycle: { primary: ['--------', 'primary'], echo: ['--------', 'echo'], shadow: ['-r------', 'echo'] },
};

function record(role: InstanceRole, phase: InstancePhase): InstanceRecord {
  return {
    id: 'kv-1',
    service: 'kv',
    role,
    slot: 1,
    host: 'local',
    phase,
    pid: 42,
    ports: { http: 8080 },
    stateDir: '/tmp/kv-1',
    restarts: [1, 2],
    limits: {},
    epoch: 3,
  };
}

describe('transition', () => {
  const cases = INSTANCE_EVENTS.flatMap((event) =>
    INSTANCE_ROLES.flatMap((role) => INSTANCE_PHASES.map((phase) => ({ event, role, phase }))),
  );

  it('covers every event, role and phase (14 × 3 × 8 combinations)', () => {
    expect(Object.keys(TABLE).sort()).toEqual([...INSTANCE_EVENTS].sort());
    expect(COLUMNS.split('').map((c) => LETTER[c])).toEqual(INSTANCE_PHASES);
    expect(cases).toHaveLength(14 * 3 * 8);
  });

  it.each(cases)('$event on a $role in phase $phase follows the table', ({ event, role, phase }) => {
    const [cells, nextRole] = TABLE[event][role];
    const cell = cells[INSTANCE_PHASES.indexOf(phase)];
    const before = record(role, phase);
    const result = transition(before, event);
    expect(before).toEqual(record(role, phase));
    if (cell === '-') {
      expect(result.ok).toBe(false);
      if (!result.ok)
        expect(result.refusal).toMatchObject({
          instance: 'kv-1',
          event,
          role,
          phase,
          reason: expect.any(String),
        });
      return;
    }
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.record).toEqual({ ...record(role, phase), role: nextRole, phase: LETTER[cell ?? ''] });
  });

  it('applyTransition changes the live record on a legal event and reports, without applying, an illegal one', () => {
    const refusals: TransitionRefusal[] = [];
    const rec = record('echo', 'running');
    expect(applyTransition(rec, 'promote', (r) => refusals.push(r))).toBe(true);
    expect([rec.role, rec.phase]).toEqual(['primary', 'running']);
    expect(applyTransition(rec, 'provision', (r) => refusals.push(r))).toBe(false);
    expect([rec.role, rec.phase]).toEqual(['primary', 'running']);
    expect(refusals).toEqual([
      expect.objectContaining({ instance: 'kv-1', event: 'provision', role: 'primary', phase: 'running' }),
    ]);
  });
});
