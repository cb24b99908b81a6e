import type {
  AccuracyReport,
  ControlDecision,
  DecisionLog,
  HistorySample,
  InstanceRecord,
  ProfileView,
  ServiceView,
} from '../control/index.js';

/**
 * What the API needs of the control plane: `ControlPlane` satisfies it, and tests pass a stub that
 * records every call (so they can prove an unauthenticated request reached none of them).
 */
export interface ApiControl {
  services(): Promise<ServiceView[]>;
  instances(): InstanceRecord[];
  forceFailover(service: string, reason: string, to?: string): Promise<ControlDecision>;
  switchover(service: string, to?: string): Promise<ControlDecision>;
  restartInstance(id: string, reason: string, force?: boolean): Promise<ControlDecision>;
  /** Maintenance mode on: no automatic failover or scaling of the service. */
  pause(service: string, reason: string): Promise<ControlDecision>;
  /** Maintenance mode off. */
  resume(service: string, reason: string): Promise<ControlDecision>;
  eventLoopDelay(): { p50Ms: number; p99Ms: number; maxMs: number };
  readonly decisions: Pick<DecisionLog, 'list' | 'subscribe'>;
  /** The dashboard's charts: a service's recent samples after `after` (ms). */
  history?(service: string, after?: number): HistorySample[] | undefined;
  /** The profile of a service (undefined: no such service). */
  profile?(service: string): Promise<ProfileView | undefined>;
  /** Forecast vs actual of a scaled service (undefined: it makes no forecast). */
  forecastAccuracy?(service: string): AccuracyReport | undefined;
}
