export { ControlPlane } from './control-plane.js';
export type { ControlPlaneOptions } from './control-plane-options.js';
export type { ServiceView } from './service-view.js';
export { serviceView } from './service-view.js';
export { ServiceHistory, historySample } from './service-history.js';
export type { HistorySample, ServiceHistoryOptions } from './service-history.js';
/** The forecast accuracy `ControlPlane.forecastAccuracy` reports (computed by predict/). */
export type { AccuracyReport } from '../predict/index.js';
export { DecisionLog } from './decision-log.js';
export type { DecisionLogOptions } from './decision-log.js';
export { Failover } from './failover.js';
export type { FailoverCause, FailoverRecord } from './failover.js';
export type { DataPlaneView } from './service-data-plane.js';
export { reconcile, describeExit, specCounts } from './reconcile.js';
export type { Action } from './reconcile.js';
export { restartDelay } from './restart.js';
export type {
  ControlDecision,
  ControlDecisionKind,
  DecisionOutcome,
  DecisionStatus,
  InstancePhase,
  InstanceRecord,
  InstanceRole,
} from './records.js';
export { failoverHistory } from './history.js';
export { ProfileManager, PROFILE_PREFIX } from './profile-manager.js';
export type { ProfileManagerDeps, ProfileView } from './profile-manager.js';
export { sizeFromProfile, echoFloorFraction } from './profile-sizing.js';
export type { ProfileSizing } from './profile-sizing.js';
export type { FailoverHistoryEntry } from './history.js';
export type { PauseRecord } from './maintenance.js';
export type { ReloadPlan, ReloadChange } from './spec-reload.js';
export { LIVE_FIELDS } from './spec-reload.js';
export { LeaderElection, LEADER_KEY, parseLeader } from './leadership.js';
export type { LeaderElectionOptions, LeaderInfo, LeadershipEvent } from './leadership.js';
export { ControlReplica, REPLICAS_PREFIX, listReplicas } from './control-replica.js';
export type { ControlReplicaOptions, LeaderTerm, ReplicaInfo, ReplicaView } from './control-replica.js';
