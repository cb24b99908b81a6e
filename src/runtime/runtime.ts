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
  /** Added to (and overriding) the control process's environment; PATH from here is used to find `command[0]`. */
  env: Record<string, string>;
  /** The instance's own state directory (created if missing). */
  stateDir: string;
  /** Directory for this instance's stdout/stderr log files. */
  logDir: string;
  /**
   * Maximum bytes per log file before it is rotated to `.1` (one rotated file kept). The process driver lets the
   * instance write its log files itself (so logs survive a control-process restart) and checks the bound on a
   * timer, so between two checks a file can briefly exceed it.
   */
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
  { supported: true; mechanism: 'cgroup-v1' | 'cgroup-v2' } | { supported: false; reason: string };

export interface InstanceStats {
  /**
   * CPU use over the last sampling interval, in percent of one core (may exceed 100).
   * The first sample of an instance is the average since the instance started.
   */
  cpuPercent: number;
  /** Resident memory summed over the instance's processes (shared pages counted once per process). */
  rssBytes: number;
  /** Cumulative bytes read from / written to storage (from /proc/<pid>/io); 0 when unreadable, see `ioAvailable`. */
  readBytes: number;
  writeBytes: number;
  /** Sample time, ms since the epoch. */
  at: number;
  /** False when /proc/<pid>/io could not be read for some process of the instance (read/write bytes then undercount). */
  ioAvailable?: boolean;
  /** Number of live (non-zombie) processes in the instance's process group. */
  processCount?: number;
  /** Log bytes dropped by rotation so far (a burst larger than the bound between two checks), see log-files.ts. */
  logDroppedBytes?: number;
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
  /** Limits actually enforced (read back from the cgroup); `{}` when none are, e.g. limits unsupported. */
  limits: ResourceLimits;
  /**
   * Start time of the process in clock ticks since boot (field 22 of /proc/<pid>/stat). Recorded at start
   * and required by `adopt()` of the process driver, so that a recycled pid is never adopted by mistake.
   */
  startTimeTicks?: number;
  /** The instance's state directory. */
  stateDir?: string;
  /** Log size bound the runtime enforces on `stdoutPath`/`stderrPath` (kept across adoption). */
  logMaxBytes?: number;
}

export interface StopOptions {
  /** Grace period after SIGTERM before SIGKILL. @default 5000 */
  graceMs?: number;
}

export interface CloseOptions extends StopOptions {
  /**
   * Leave every instance running and only detach from it (timers stopped, child handles unref'd), so that a
   * later control process can `adopt()` them. Used for a control-process restart or hand-over.
   * @default false
   */
  leaveRunning?: boolean;
}

export interface Runtime {
  readonly name: string;
  /** Starts an instance. Throws UNDERSTUDY_ERR_RUNTIME_SPAWN when the command can't start. */
  start(launch: InstanceLaunch): Promise<InstanceHandle>;
  /** Graceful stop: SIGTERM to the process group, then SIGKILL after the grace period. Resolves once it exited. */
  stop(instanceId: string, options?: StopOptions): Promise<InstanceExit>;
  /** Sends a signal to the instance's whole process group. */
  signal(instanceId: string, signal: NodeJS.Signals): void;
  /**
   * Resizes limits while running; `limits` replaces the previous limits (an omitted field means unlimited).
   * Throws UNDERSTUDY_ERR_RUNTIME_LIMITS when unsupported or rejected.
   */
  setResources(instanceId: string, limits: ResourceLimits): Promise<void>;
  limitsSupport(): LimitsSupport;
  /** Samples the instance's processes; undefined when the instance is unknown or has exited. */
  stats(instanceId: string): Promise<InstanceStats | undefined>;
  get(instanceId: string): InstanceHandle | undefined;
  list(): InstanceHandle[];
  /** Called at once when an instance's process exits (not polled). */
  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void;
  /**
   * Re-attaches to an instance started by an earlier control process (by pid/pgid), without restarting it.
   * Resolves false (adopting nothing) when the process is gone, or its pgid or start time differ from the handle.
   */
  adopt(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean>;
  /** Stops every instance it started or adopted (graceful), or detaches with `leaveRunning`; idempotent. */
  close(options?: CloseOptions): Promise<void>;
}
