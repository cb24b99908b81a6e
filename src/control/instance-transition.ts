import type { DecisionLog } from './decision-log.js';
import type { InstancePhase, InstanceRecord, InstanceRole } from './records.js';

/** Every role, in a fixed order (the transition table is exhaustive over these). */
export const INSTANCE_ROLES: readonly InstanceRole[] = ['primary', 'echo', 'shadow'];

/** Every phase, in a fixed order (the transition table is exhaustive over these). */
export const INSTANCE_PHASES: readonly InstancePhase[] = [
  'starting',
  'running',
  'unhealthy',
  'exited',
  'failed',
  'stopped',
  'fenced',
  'standby',
];

/**
 * What happens to an instance. Every change of an instance's `role` or `phase` in control is one of these,
 * applied through {@link transition}:
 * - `launch`: its process is being started (→ `starting`);
 * - `ready`: it answers its probe or health check (→ `running`);
 * - `unhealthy`: its health check fails, or it is out of the serving set for a hang (→ `unhealthy`);
 * - `exit`: its process is gone and a restart is pending (→ `exited`);
 * - `fail`: given up on: restart policy exhausted, start failed, state directory refused (→ `failed`);
 * - `stop`: stopped on purpose (→ `stopped`);
 * - `adopt`: a restarted control process adopts its running process (→ `starting`, until a check passes);
 * - `promote`: an echo becomes a primary (phase unchanged);
 * - `demote`: a primary becomes an echo and keeps running (switchover, scale-in into the pool);
 * - `fence`: a deposed primary, killed so it cannot serve, waits to rejoin as an echo (→ echo, `fenced`);
 * - `standby`: a cold echo kept in sync without a process (→ `standby`);
 * - `provision`: an echo is (re)built from the primary's state (checks only that it is an echo that
 *   does not run);
 * - `step-down`: a promotion that failed half-way, or one interrupted by a crash, leaves this instance a
 *   stopped echo (→ echo, `stopped`);
 * - `recycle`: a running shadow that fed a new serving instance joins the warm pool (→ echo, phase unchanged).
 */
export type InstanceEvent =
  | 'launch'
  | 'ready'
  | 'unhealthy'
  | 'exit'
  | 'fail'
  | 'stop'
  | 'adopt'
  | 'promote'
  | 'demote'
  | 'fence'
  | 'standby'
  | 'provision'
  | 'step-down'
  | 'recycle';

/** Every event, in a fixed order. */
export const INSTANCE_EVENTS: readonly InstanceEvent[] = [
  'launch',
  'ready',
  'unhealthy',
  'exit',
  'fail',
  'stop',
  'adopt',
  'promote',
  'demote',
  'fence',
  'standby',
  'provision',
  'step-down',
  'recycle',
];

/** A transition that is not allowed from the record's role and phase: a bug to report, never applied. */
export interface TransitionRefusal {
  instance: string;
  service: string;
  event: InstanceEvent;
  role: InstanceRole;
  phase: InstancePhase;
  reason: string;
}

/** The outcome of {@link transition}: the new record, or why the event was refused. */
export type TransitionResult =
  { ok: true; record: InstanceRecord } | { ok: false; refusal: TransitionRefusal };

const ALL_PHASES = new Set<InstancePhase>(INSTANCE_PHASES);
const phases = (...p: InstancePhase[]): ReadonlySet<InstancePhase> => new Set(p);
const allBut = (...p: InstancePhase[]): ReadonlySet<InstancePhase> =>
  new Set(INSTANCE_PHASES.filter((x) => !p.includes(x)));
/** Phases in which an instance has (or is getting) a process of its own. */
const LIVE = phases('starting', 'running', 'unhealthy');

interface Rule {
  /** Roles the event applies to. */
  roles: ReadonlySet<InstanceRole>;
  /** Phases the event applies from. */
  from: ReadonlySet<InstancePhase>;
  /** The new role (unchanged when absent). */
  role?: InstanceRole;
  /** The new phase (unchanged when absent). */
  phase?: InstancePhase;
}

const ANY_ROLE = new Set<InstanceRole>(INSTANCE_ROLES);
const SERVING_OR_ECHO = new Set<InstanceRole>(['primary', 'echo']);

/** The table: for each event, from which roles and phases it is legal, and what it sets. */
const RULES: Readonly<Record<InstanceEvent, Rule>> = {
  launch: { roles: ANY_ROLE, from: phases('starting', 'exited', 'stopped', 'standby'), phase: 'starting' },
  ready: { roles: ANY_ROLE, from: LIVE, phase: 'running' },
  unhealthy: { roles: ANY_ROLE, from: LIVE, phase: 'unhealthy' },
  exit: {
    roles: ANY_ROLE,
    from: phases('starting', 'running', 'unhealthy', 'exited', 'fenced'),
    phase: 'exited',
  },
  fail: { roles: ANY_ROLE, from: ALL_PHASES, phase: 'failed' },
  stop: { roles: ANY_ROLE, from: ALL_PHASES, phase: 'stopped' },
  adopt: { roles: ANY_ROLE, from: allBut('stopped', 'failed', 'standby'), phase: 'starting' },
  promote: { roles: SERVING_OR_ECHO, from: allBut('stopped', 'failed'), role: 'primary' },
  demote: { roles: new Set(['primary']), from: ALL_PHASES, role: 'echo' },
  fence: { roles: new Set(['primary']), from: ALL_PHASES, role: 'echo', phase: 'fenced' },
  standby: { roles: new Set(['echo']), from: allBut('failed', 'fenced'), phase: 'standby' },
  provision: { roles: new Set(['echo']), from: phases('starting', 'exited', 'stopped') },
  'step-down': { roles: SERVING_OR_ECHO, from: ALL_PHASES, role: 'echo', phase: 'stopped' },
  recycle: { roles: new Set(['shadow']), from: phases('running'), role: 'echo' },
};

/**
 * The one place an instance's role and phase change: the record after `event`, or a refusal when the
 * event is not legal from the record's role and phase. Pure: `record` is not modified.
 */
export function transition(record: InstanceRecord, event: InstanceEvent): TransitionResult {
  const rule = RULES[event];
  const { role, phase } = record;
  const refuse = (reason: string): TransitionResult => ({
    ok: false,
    refusal: { instance: record.id, service: record.service, event, role, phase, reason },
  });
  if (!rule.roles.has(role)) return refuse(`'${event}' does not apply to a ${role}`);
  if (!rule.from.has(phase)) return refuse(`'${event}' is not allowed from phase '${phase}'`);
  return { ok: true, record: { ...record, role: rule.role ?? role, phase: rule.phase ?? phase } };
}

/** Receives refused transitions (control records them as decisions). */
export type RefusalReporter = (refusal: TransitionRefusal) => void;

/**
 * Applies {@link transition} to a live record in place (the control plane's cache hands out shared
 * references): on success the role and phase are updated and true is returned; a refusal is reported
 * and nothing changes.
 */
export function applyTransition(rec: InstanceRecord, event: InstanceEvent, report: RefusalReporter): boolean {
  const result = transition(rec, event);
  if (!result.ok) {
    report(result.refusal);
    return false;
  }
  rec.role = result.record.role;
  rec.phase = result.record.phase;
  const pending = PENDING.get(rec);
  if (pending) pending.push(event);
  else PENDING.set(rec, [event]);
  return true;
}

/**
 * Events applied to a live record since it was last written to the store. The record-writing layer
 * replays them on a fresh copy when its compare-and-set is refused (another writer changed the record),
 * so that the change is decided again through the table rather than overwriting the other's.
 */
const PENDING = new WeakMap<InstanceRecord, InstanceEvent[]>();

/** The events applied to `rec` (in place) and not yet written, oldest first. */
export function pendingEvents(rec: InstanceRecord): readonly InstanceEvent[] {
  return PENDING.get(rec) ?? [];
}

/** Replaces the pending events of `rec` (after they were replayed on a fresher copy). */
export function setPendingEvents(rec: InstanceRecord, events: readonly InstanceEvent[]): void {
  if (events.length === 0) PENDING.delete(rec);
  else PENDING.set(rec, [...events]);
}

/** Forgets the first `count` pending events of `rec` (they are in the store now). */
export function clearPendingEvents(rec: InstanceRecord, count: number): void {
  const pending = PENDING.get(rec);
  if (!pending) return;
  pending.splice(0, count);
  if (pending.length === 0) PENDING.delete(rec);
}

/**
 * A reporter that records each refused transition as a `transition-refused` decision (a bug report: the
 * caller asked for a change the table does not allow, and it was not applied).
 */
export function reportRefusals(decisions: DecisionLog): RefusalReporter {
  return (r) => {
    decisions.record({
      kind: 'transition-refused',
      service: r.service,
      instance: r.instance,
      what: `refused '${r.event}' for ${r.role} ${r.instance} in phase '${r.phase}'`,
      why: r.reason,
      inputs: { ...r },
      outcome: { status: 'refused' },
    });
  };
}

/** {@link applyTransition} with refusals recorded in `decisions`: returns whether the event was applied. */
export function moveInstance(decisions: DecisionLog, rec: InstanceRecord, event: InstanceEvent): boolean {
  return applyTransition(rec, event, reportRefusals(decisions));
}
