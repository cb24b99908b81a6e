import type { DecisionKind as PolicyDecisionKind } from '../policy/index.js';
import type { InstanceExit, InstanceHandle, ResourceLimits } from '../agent/index.js';

/** Role of an instance within its service. */
export type InstanceRole = 'primary' | 'echo' | 'shadow';

/**
 * Lifecycle phase of an instance as the control plane sees it.
 * `starting`: process started, not yet healthy; `running`: healthy (or no check);
 * `unhealthy`: health check failing; `exited`: process gone, restart pending per policy;
 * `failed`: gave up restarting; `stopped`: stopped on purpose; `fenced`: a deposed primary, killed so it
 * cannot serve, waiting to rejoin as an echo; `standby`: a cold echo, not running, its files kept in sync.
 */
export type InstancePhase =
  'starting' | 'running' | 'unhealthy' | 'exited' | 'failed' | 'stopped' | 'fenced' | 'standby';

/** One instance as recorded in the store under `instances/<id>`. */
export interface InstanceRecord {
  id: string;
  service: string;
  role: InstanceRole;
  /** Slot within the service: 0 is the primary's slot, 1.. the echoes'. */
  slot: number;
  host: string;
  phase: InstancePhase;
  pid?: number;
  pgid?: number;
  ports: Record<string, number>;
  stateDir: string;
  stdoutPath?: string;
  stderrPath?: string;
  startedAt?: number;
  /** Times of restarts within the policy window, newest last. */
  restarts: number[];
  lastExit?: InstanceExit;
  /** When the next restart is due (phase `exited`). */
  nextRestartAt?: number;
  limits: ResourceLimits;
  health?: { healthy: boolean; checkedAt: number; detail: string; consecutiveFailures: number };
  /** Epoch of the service when this instance last became primary. */
  epoch: number;
  /** The runtime's handle of the running process: a restarted control process adopts it from this. */
  handle?: Omit<InstanceHandle, 'exit'>;
}

/**
 * Every kind of decision the control loop records: its own actions and observations, and the kinds of
 * the policy decisions it carries out (scaling, resizing, migration).
 */
export type ControlDecisionKind =
  | 'start'
  | 'restart'
  | 'give-up'
  | 'stop'
  | 'exited'
  | 'healthy'
  | 'unhealthy'
  | 'hang'
  | 'unready'
  | 'serving'
  | 'state-transfer'
  | 'adopt'
  | 'failover'
  | 'switchover'
  | 'promotion-recovery'
  | 'leadership'
  | 'place'
  | 'host-lost'
  /** A host's agent stops for a planned restart: its host is held (no loss, no failover) for the window. */
  | 'host-restart'
  | 'demote'
  | 'recreate'
  | 'shadow-create'
  | 'shadow-retire'
  | 'shadow-warning'
  | 'shadow-clear'
  | 'echo-in-sync'
  | 'echo-lagging'
  | 'external-follow'
  | 'external-rejoin'
  | 'sync-error'
  | 'sync-security'
  | 'route'
  | 'history'
  | 'capacity'
  | 'notice'
  | 'error'
  | 'transition-refused'
  | 'pause'
  | 'resume'
  | 'reload'
  /** The durable mutation log was reopened after damage it repaired (a torn tail cut off, segments before a gap deleted). */
  | 'mutation-log-recovered'
  /** A hot echo is brought up to date by replaying the mutation log (not a full copy): from which seq, and why. */
  | 'replay'
  /** A service's profile was refined: dependencies seen for the first time, or an hour with enough data. */
  | 'profile'
  /** The shadow or warm echo that fed a new serving instance is recycled into the warm pool, kept or stopped. */
  | 'recycle'
  | PolicyDecisionKind;

/**
 * Where a decision stands: `pending` (being carried out), `ok` (done), `failed` (tried, did not work),
 * `refused` (not attempted: not allowed from the current state), `recorded` (an observation, nothing to do),
 * `skipped` (an automatic action held because its service is paused: what would have been done).
 */
export type DecisionStatus = 'pending' | 'ok' | 'failed' | 'refused' | 'recorded' | 'skipped';

/** What came of a decision: a status to branch on, and a human detail (never parsed). */
export interface DecisionOutcome {
  status: DecisionStatus;
  /** One line for people: the pid started, the error, the timings. */
  detail?: string;
}

/**
 * An explained action: what the control loop chose, why, on which inputs, and what came of it. (Not to be
 * confused with the policy module's `Decision`, a pure recommendation this loop may carry out.)
 */
export interface ControlDecision {
  /** Sequence number, unique per store (reserved from the store's counter). */
  seq: number;
  at: number;
  /** Machine-readable kind, e.g. `start`, `restart`, `give-up`, `stop`, `exited`, `unhealthy`. */
  kind: ControlDecisionKind;
  service: string;
  instance?: string;
  /** One line: what was decided. */
  what: string;
  /** One line: why. */
  why: string;
  /** The evidence and parameters the decision was made on. */
  inputs: Record<string, unknown>;
  /** What came of it; see {@link DecisionOutcome}. */
  outcome: DecisionOutcome;
}

/**
 * A promotion under way, stored under `promotions/<service>` before the epoch compare-and-set and
 * removed once every role is saved. A control process that finds one at start was killed mid-promotion:
 * it rolls the promotion forward or back (see `promotion-recovery.ts`).
 */
export interface PromotionIntent {
  service: string;
  kind: 'failover' | 'switchover';
  /** The primary being replaced (absent when the service had none). */
  from?: string;
  /** The echo being promoted. */
  to: string;
  /** The promoted echo's slot before the promotion (the deposed primary's slot after it). */
  toSlot: number;
  /** The epoch the compare-and-set expects, and the one it sets (`epoch + 1`). */
  epoch: number;
  next: number;
  /** When the promotion began, ms since the epoch. */
  at: number;
  /** Sequence number of the promotion's decision. */
  decision: number;
}
