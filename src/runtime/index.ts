export type {
  CloseOptions,
  InstanceExit,
  InstanceHandle,
  InstanceLaunch,
  InstanceStats,
  LimitsSupport,
  ResourceLimits,
  Runtime,
  StopOptions,
} from './runtime.js';
export { ProcessRuntime } from './process-runtime.js';
export type { ProcessRuntimeOptions } from './process-runtime.js';
export { isFailedExit, nextRestartDelay, resolveRestartPolicy } from './restart-policy.js';
export type { RestartPolicy, RestartPolicyOptions } from './restart-policy.js';
export { allocatePort, assertPortFree } from './ports.js';
export { listGroupProcesses } from './proc-stats.js';
export type { ProcStat } from './proc-stats.js';
export { readFootprint } from './proc-footprint.js';
export type { InstanceFootprint } from './proc-footprint.js';
export { HOOK_OUTPUT_LIMIT, runHookRequest } from './hook-runner.js';
export type { HookRequest, HookResult } from './hook-runner.js';
