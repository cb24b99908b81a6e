export { probe } from './probes.js';
export type { ProbeResult, ProbeTarget } from './probes.js';
export { ActiveHealthMonitor } from './active-health-monitor.js';
export type { ActiveHealthOptions, HealthVerdict } from './active-health-monitor.js';
