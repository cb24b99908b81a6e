export { probe } from './probes.js';
export type { ProbeResult, ProbeTarget } from './probes.js';
export { ActiveHealthMonitor } from './active-health-monitor.js';
export type { ActiveHealthOptions, HealthVerdict } from './active-health-monitor.js';
export { PhiAccrualDetector } from './phi-accrual.js';
export type { PhiAccrualOptions } from './phi-accrual.js';
export { LivenessWatch, processState } from './liveness-watch.js';
export type { FailureVerdict, LivenessWatchOptions } from './liveness-watch.js';
