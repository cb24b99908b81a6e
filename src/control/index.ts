export { ControlPlane } from './control-plane.js';
export type { ControlPlaneOptions, ServiceView } from './control-plane.js';
export { DecisionLog } from './decision-log.js';
export type { DecisionLogOptions } from './decision-log.js';
export { reconcile, describeExit } from './reconcile.js';
export type { Action } from './reconcile.js';
export { restartDelay } from './restart.js';
export type { Decision, InstancePhase, InstanceRecord, InstanceRole } from './records.js';
