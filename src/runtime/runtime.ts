/**
 * The runtime driver: provisions, starts, stops and measures service instances on a host.
 * The `process` driver runs each instance as a local OS process group; later drivers
 * (`netns`, `kubernetes`) implement the same interface.
 */

/** What a driver needs to start one instance. Resolved by the control loop from a service spec. */
export interface InstanceLaunch {
  /** Unique instance id, e.g. `kv-1`. */
  instanceId: string;
  service: string;
  /** Host to place the instance on; `local` for the process driver. */
  host: string;
  /** argv with placeholders already substituted. */
  command: string[];
  cwd: string;
  env: Record<string, string>;
  /** The instance's own state directory (created if missing). */
  stateDir: string;
  /** Directory for this instance's stdout/stderr log files. */
  logDir: string;
  /** Maximum bytes per log file before it is rotated (one rotated file kept). */
  logMaxBytes: number;
  /** Resource limits to apply at start; undefined fields mean unlimited. */
  resources?: ResourceLimits;
}

export interface ResourceLimits {
  /** CPU limit in cores (e.g. 0.5). */
  cpu?: number;
  /** Memory limit in bytes. */
  memoryBytes?: number;
}

/** Whether and how limits are enforced on this host. */
export type LimitsSupport =
  | { supported: true; mechanism: 'cgroup-v1' | 'cgroup-v2' }
  | { supported: false; reason: string };

export interface InstanceStats {
  /** CPU use over the last sampling interval, in percent of one core (may exceed 100). */
  cpuPercent: number;
  rssBytes: number;
  /** Cumulative bytes read from / written to storage (from /proc/<pid>/io). */
  readBytes: number;
  writeBytes: number;
  /** Sample time, ms since the epoch. */
  at: number;
}

export type InstanceExit = { code: number | null; signal: NodeJS.Signals | null; at: number };

/** Runtime view of one instance. */
export interface InstanceHandle {
  instanceId: string;
  service: string;
  host: string;
  pid: number;
  /** Process-group id (equals pid for the process driver). */
  pgid: number;
  startedAt: number;
  stdoutPath: string;
  stderrPath: string;
  /** Set once the process exited. */
  exit?: InstanceExit;
  limits: ResourceLimits;
}

export interface StopOptions {
  /** Grace period after SIGTERM before SIGKILL. @default 5000 */
  graceMs?: number;
}

export interface Runtime {
  readonly name: string;
  /** Starts an instance. Throws UNDERSTUDY_ERR_RUNTIME_SPAWN when the command can't start. */
  start(launch: InstanceLaunch): Promise<InstanceHandle>;
  /** Graceful stop: SIGTERM to the process group, then SIGKILL after the grace period. Resolves once it exited. */
  stop(instanceId: string, options?: StopOptions): Promise<InstanceExit>;
  /** Sends a signal to the instance's whole process group. */
  signal(instanceId: string, signal: NodeJS.Signals): void;
  /** Resizes limits while running. Throws UNDERSTUDY_ERR_RUNTIME_LIMITS when unsupported. */
  setResources(instanceId: string, limits: ResourceLimits): Promise<void>;
  limitsSupport(): LimitsSupport;
  stats(instanceId: string): Promise<InstanceStats | undefined>;
  get(instanceId: string): InstanceHandle | undefined;
  list(): InstanceHandle[];
  /** Called at once when an instance's process exits (not polled). */
  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void;
  /** Re-attaches to an instance started by an earlier control process (by pid/pgid), without restarting it. */
  adopt(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean>;
  /** Stops every instance it started (graceful), idempotent. */
  close(options?: StopOptions): Promise<void>;
}
