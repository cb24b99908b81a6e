import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { FailureVerdict, HealthVerdict, ProbeResult, ProbeTarget } from '../health/index.js';
import type {
  HookRequest,
  HookResult,
  CloseOptions,
  InstanceExit,
  InstanceFootprint,
  InstanceHandle,
  InstanceLaunch,
  InstanceStats,
  LimitsSupport,
  ResourceLimits,
  StopOptions,
} from '../runtime/index.js';
import type { TreeDifference } from '../sync/index.js';
import type { EchoFileSyncView, ServiceFileSyncOptions } from './service-file-sync.js';

/** Facts about a host the control plane weighs (migration readiness, placement). */
export interface HostFacts {
  /** Mean I/O latency of the host's block devices since the previous call, ms (0 when unknown). */
  diskLatencyMs: number;
  /** One-minute load average divided by the number of cores (0 when unknown). */
  loadPerCore: number;
}

/** What an agent watches of one instance: its active health check and its liveness heartbeat. */
export interface InstanceWatch {
  instanceId: string;
  /** The spec's active health check; absent when the spec has none. */
  health?: {
    target: ProbeTarget;
    intervalMs: number;
    timeoutMs: number;
    failureThreshold: number;
    startPeriodMs: number;
  };
  /** The liveness heartbeat (hang detection) of this process; absent when it has no pid. */
  liveness?: {
    pid: number;
    /** HTTP or TCP target answering while alive; absent: only the process state is watched. */
    target?: ProbeTarget;
    intervalMs: number;
    phiThreshold: number;
    acceptablePauseMs: number;
  };
}

/** Verdicts of an {@link InstanceWatch}. */
export interface InstanceWatchHandlers {
  onHealth(verdict: HealthVerdict): void;
  onHang(verdict: FailureVerdict): void;
}

/** A hook the agent runs on an instance: a signal to its process group, or an HTTP POST to it. */
export interface InstanceHook {
  signal?: NodeJS.Signals;
  http?: { port: number; path: string };
}

/**
 * The file-state sync of one service (a source on the primary's state directory, a target per warm
 * or cold echo). `ServiceFileSync` is the local implementation.
 */
export interface FileSync {
  /** Points the source at the (new) primary's state directory; every echo follows it. */
  setPrimary(stateDir: string): Promise<void>;
  /** Adds a sync target: the echo's state directory is kept equal to the primary's. */
  addEcho(id: string, stateDir: string): Promise<void>;
  /** Removes a sync target (nothing more is written into its directory). */
  removeEcho(id: string): Promise<void>;
  /** Whether an echo has applied every change seen so far. */
  caughtUp(id: string): boolean;
  /** Resolves true once the echo has applied every change, false on timeout. */
  waitCaughtUp(id: string, timeoutMs: number): Promise<boolean>;
  echoes(): EchoFileSyncView[];
  close(): Promise<void>;
  /**
   * Cross-host (a sync on an agent of the cluster, `RemoteFileSync`): serve echo `id` of host `peerHost`
   * from this host's primary; answers where that host connects to. Absent where files stay on one host.
   */
  addRemoteEcho?(id: string, peerHost: string): Promise<{ address: string; port: number }>;
  /**
   * Cross-host: this host's echoes follow the primary of host `sourceHost`, whose agent exposed a
   * source to this host at `address:port` ({@link addRemoteEcho}). Absent where files stay on one host.
   */
  followPrimary?(source: { host: string; address: string; port: number }): Promise<void>;
}

/**
 * The per-host side of Understudy (shared/DESIGN.md, "Modes"): everything that touches an instance's
 * process, files or network address happens here, never in the control plane. Embedded mode has one
 * {@link LocalAgent}; in distributed mode each host runs one and control reaches it over the network,
 * so every operation is asynchronous.
 */
export interface Agent {
  /** The host name instances on this agent carry in `InstanceRecord.host`. */
  readonly host: string;
  /** The address the host's instances are reached at (backends, probes, hooks). */
  readonly address: string;
  /** The runtime driver's name, e.g. `process`. */
  readonly runtimeName: string;

  /** Starts an instance. Throws UNDERSTUDY_ERR_RUNTIME_SPAWN when the command can't start. */
  start(launch: InstanceLaunch): Promise<InstanceHandle>;
  /** Graceful stop (SIGTERM, SIGKILL after the grace period); resolves once it exited. */
  stop(instanceId: string, options?: StopOptions): Promise<InstanceExit>;
  /** Sends a signal to the instance's whole process group. */
  kill(instanceId: string, signal: NodeJS.Signals): Promise<void>;
  /**
   * Fences a deposed primary: kills its process group at once so that it cannot serve (or write its
   * state) under the new epoch. An instance already gone is fenced already; never throws for that.
   */
  fence(instanceId: string): Promise<void>;
  /** Re-attaches to an instance an earlier control process started; false when it is gone or not the same. */
  adopt(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean>;
  /** The runtime's handle of an instance it started or adopted (with `exit` once it exited). */
  instance(instanceId: string): Promise<InstanceHandle | undefined>;
  /** Resizes limits while running. Throws UNDERSTUDY_ERR_RUNTIME_LIMITS when unsupported or rejected. */
  setResources(instanceId: string, limits: ResourceLimits): Promise<void>;
  limitsSupport(): Promise<LimitsSupport>;
  /** Samples the instance's processes; undefined when unknown or exited. */
  stats(instanceId: string): Promise<InstanceStats | undefined>;
  /**
   * What the instance's processes use (listening and connected TCP ports, shared libraries, open
   * files), read from /proc on its host; undefined when unknown or exited. Feeds the service's profile.
   */
  footprint(instanceId: string): Promise<InstanceFootprint | undefined>;
  /** Called at once when an instance's process exits. Returns an unsubscribe function. */
  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void;
  /** A free port on the host for a new instance. */
  allocatePort(): Promise<number>;

  /** Runs one probe against an instance on this host; never throws (a failure is a result). */
  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult>;
  /** Watches an instance (health check and heartbeat) until `signal` aborts. */
  watch(watch: InstanceWatch, handlers: InstanceWatchHandlers, signal: AbortSignal): void;
  /**
   * Runs a hook on an instance. Resolves with the HTTP status of an HTTP hook (undefined for a signal
   * only); rejects when the HTTP hook does not answer within `timeoutMs`.
   */
  runHook(instanceId: string, hook: InstanceHook, timeoutMs: number): Promise<number | undefined>;
  /**
   * Runs an external-echo hook (docs/recipes.md) on this host: an exec hook as a process group killed at
   * the timeout, an HTTP hook as a POST to the host's address. Never rejects for a failing hook (the
   * result says how it failed).
   */
  runExternalHook(request: HookRequest): Promise<HookResult>;

  /**
   * Makes `targetDir` a snapshot of the source instance's state directory: the target is emptied,
   * created owner-only and filled with a copy (a local copy now; a transfer between hosts later). With
   * no source the target is left empty.
   */
  snapshotState(source: { host: string; stateDir: string } | undefined, targetDir: string): Promise<void>;
  /** Prepares an echo's state directory (owner-only) and its sync journal for a file-sync target. */
  prepareSyncTarget(stateDir: string): Promise<void>;
  /** Removes an instance's state directory and its sync journal. */
  removeState(stateDir: string): Promise<void>;
  /** Differences between two state directories on this host (empty: identical). */
  compareState(aDir: string, bDir: string): Promise<TreeDifference[]>;
  /** Creates the file-state sync of a service on this host. */
  fileSync(options: ServiceFileSyncOptions): FileSync;

  /** Disk latency and load of the host. */
  hostFacts(): Promise<HostFacts>;
  /** Stops (or detaches from, with `leaveRunning`) every instance; idempotent. */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * The agents control can reach, by host name (`InstanceRecord.host`). Embedded mode registers one
 * agent under `local`.
 */
export class AgentRegistry {
  readonly #agents = new Map<string, Agent>();
  readonly #exitListeners = new Set<(handle: InstanceHandle, exit: InstanceExit) => void>();
  /** Per host: unsubscribes the registry's exit listeners from that agent. */
  readonly #unsubscribe = new Map<string, (() => void)[]>();
  readonly #agentListeners = new Set<(agent: Agent) => void>();

  /** `allowEmpty`: a registry filled later (from the store's host records). @default false */
  constructor(agents: Iterable<Agent>, options: { allowEmpty?: boolean } = {}) {
    for (const a of agents) this.set(a);
    if (this.#agents.size === 0 && !options.allowEmpty)
      throw new UnderstudyError(ErrorCode.Internal, 'an agent registry needs at least one agent');
  }

  /**
   * Adds (or replaces) the agent of a host; listeners of {@link onExit} follow it, and listeners of
   * {@link onAgent} are told.
   */
  set(agent: Agent): void {
    this.delete(agent.host);
    this.#agents.set(agent.host, agent);
    this.#unsubscribe.set(
      agent.host,
      [...this.#exitListeners].map((l) => agent.onExit(l)),
    );
    for (const l of [...this.#agentListeners]) l(agent);
  }

  /**
   * Calls `listener` with each agent {@link set} from now on: a host joining, or a host served by
   * another agent than before (distributed mode: its agent back on a new API address, or registered
   * again, is reached through a new client). Returns the unsubscribe function.
   */
  onAgent(listener: (agent: Agent) => void): () => void {
    this.#agentListeners.add(listener);
    return () => this.#agentListeners.delete(listener);
  }

  /** Removes the agent of a host (it is gone); returns it. */
  delete(host: string): Agent | undefined {
    const agent = this.#agents.get(host);
    for (const off of this.#unsubscribe.get(host) ?? []) off();
    this.#unsubscribe.delete(host);
    this.#agents.delete(host);
    return agent;
  }

  /**
   * Calls `listener` when an instance exits on any agent, including agents added later. Returns the
   * unsubscribe function.
   */
  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void {
    this.#exitListeners.add(listener);
    for (const [host, agent] of this.#agents) this.#unsubscribe.get(host)?.push(agent.onExit(listener));
    return () => {
      this.#exitListeners.delete(listener);
      // Unsubscribing one listener from each agent: re-subscribe the rest (rare: control shutting down).
      for (const [host, agent] of this.#agents) {
        for (const off of this.#unsubscribe.get(host) ?? []) off();
        this.#unsubscribe.set(
          host,
          [...this.#exitListeners].map((l) => agent.onExit(l)),
        );
      }
    };
  }

  /** The agent of a host. Throws UNDERSTUDY_ERR_NOT_FOUND for a host no agent serves. */
  get(host: string): Agent {
    const agent = this.#agents.get(host);
    if (!agent) throw new UnderstudyError(ErrorCode.NotFound, `no agent for host '${host}'`);
    return agent;
  }

  /** Whether an agent serves `host`. */
  has(host: string): boolean {
    return this.#agents.has(host);
  }

  /** The agent of the host an instance is placed on. */
  of(rec: { host: string }): Agent {
    return this.get(rec.host);
  }

  /** The address an instance is reached at. */
  addressOf(rec: { host: string }): string {
    return this.get(rec.host).address;
  }

  all(): Agent[] {
    return [...this.#agents.values()];
  }
}
