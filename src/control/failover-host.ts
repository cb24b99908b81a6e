import type { StateStore } from '../store/index.js';
import type { LaunchContext } from './instance-launch.js';
import type { ControlDecision, InstanceRecord } from './records.js';
import type { ServingSetHost } from './serving-set.js';

/** Label of a promotion in the per-service work queue. */
export const PROMOTION_WORK = 'promotion';

/** Store key prefix of promotion intents (`promotions/<service>`). */
export const PROMOTION_PREFIX = 'promotions/';

/** Timings of the last failover or switchover of a service, shown by `understudy status`. */
export interface FailoverRecord {
  kind: 'failover' | 'switchover';
  at: number;
  from: string;
  to: string;
  epoch: number;
  cause: string;
  /** Failure to detection, ms (when the failure time is known, e.g. a process exit). */
  detectionMs?: number;
  /** Detection (or request) to the new primary serving, ms. */
  promotionMs: number;
  /** Acknowledged mutations the promoted echo had not applied (hot mode); empty means nothing lost. */
  atRisk: number[];
  /** When redundancy was restored (a replacement echo in sync); undefined while degraded. */
  restoredAt?: number;
}

/** The instances a failover works on (the instance supervisor is one). */
export interface FailoverHost extends ServingSetHost {
  /** The store: the service's epoch (compare-and-set) and the promotion intent. */
  readonly store: StateStore;
  /** Marks an instance as stopped on purpose: its exit is not a failure. */
  expectExit(id: string): void;
  /** Starts (or restarts) an instance process for a record; settles the decision. */
  launch(rec: InstanceRecord, decision: ControlDecision): Promise<void>;
  /** Resolves once the instance answers (health check or port), or false on timeout. */
  waitReady(rec: InstanceRecord, timeoutMs: number): Promise<boolean>;
  /** Every known instance of every service (to check that a state directory is no one else's). */
  allInstances(): InstanceRecord[];
  /** Where instances run: the cwd of an external echo's hooks. */
  readonly launchContext: LaunchContext;
}

/** The cause of a failover: what was seen, and when the failure happened if known. */
export interface FailoverCause {
  /** `host`: its host is lost (no heartbeat, or its lease lapsed). */
  kind: 'crash' | 'hang' | 'unhealthy' | 'forced' | 'host';
  detail: string;
  evidence: Record<string, unknown>;
  detectedAt: number;
  failedAt?: number;
}
