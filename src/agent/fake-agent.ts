import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { FailureVerdict, HealthVerdict, ProbeResult, ProbeTarget } from '../health/index.js';
import type {
  InstanceExit,
  InstanceHandle,
  InstanceLaunch,
  InstanceFootprint,
  InstanceStats,
  LimitsSupport,
  ResourceLimits,
  StopOptions,
  HookRequest,
  HookResult,
} from '../runtime/index.js';
import { runHookRequest } from '../runtime/index.js';
import type { TreeDifference } from '../sync/index.js';
import type {
  Agent,
  FileSync,
  HostFacts,
  InstanceHook,
  InstanceWatch,
  InstanceWatchHandlers,
} from './agent.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { EchoFileSyncView, ServiceFileSyncOptions } from './service-file-sync.js';

/** One instance of a {@link FakeAgent}: a record in memory, no process. */
export interface FakeInstance {
  launch?: InstanceLaunch;
  handle: InstanceHandle;
  ports: number[];
  /** Answers probes (false: a cold echo that never becomes ready). */
  ready: boolean;
}

/** Options of {@link FakeAgent}. */
export interface FakeAgentOptions {
  /** @default 'local' */
  host?: string;
  /** @default '192.0.2.1' (TEST-NET-1, RFC 5737: never a real host) */
  address?: string;
  /** @default systemClock */
  clock?: Clock;
  /** Whether resource limits are "supported". @default false */
  limits?: boolean;
}

/**
 * An {@link Agent} for unit tests: instances are in-memory records, nothing is started, copied or
 * contacted. Failures are scripted: {@link crash}, {@link hang}, {@link unhealthy}, {@link failHook},
 * {@link neverReady}, {@link failStart}. Every operation is appended to {@link log} (e.g. `start kv-1`,
 * `fence kv-1`, `snapshot kv-1 -> kv-3`), so that tests can assert what control asked of the host.
 */
export class FakeAgent implements Agent {
  readonly host: string;
  readonly address: string;
  readonly runtimeName = 'fake';
  readonly clock: Clock;
  /** What control asked of this agent, in order. */
  readonly log: string[] = [];
  readonly #instances = new Map<string, FakeInstance>();
  readonly #watches = new Map<string, { handlers: InstanceWatchHandlers; signal: AbortSignal }>();
  readonly #exitListeners = new Set<(handle: InstanceHandle, exit: InstanceExit) => void>();
  readonly #failHooks = new Set<string>();
  readonly #failStarts = new Set<string>();
  #failNextHook = false;
  readonly #neverReady = new Set<string>();
  readonly #limits: boolean;
  #nextPid = 1000;
  #nextPort = 20_000;
  /** Sync targets per service: echo id → state directory. */
  readonly syncs = new Map<string, FakeFileSync>();

  constructor(options: FakeAgentOptions = {}) {
    this.host = options.host ?? 'local';
    this.address = options.address ?? '192.0.2.1';
    this.clock = options.clock ?? systemClock;
    this.#limits = options.limits ?? false;
  }

  // ── scripting ──────────────────────────────────────────────────────────────────────────────────

  /** The instance's process exits with `code` (a crash), as the runtime would report it. */
  crash(instanceId: string, code = 1): void {
    this.#exit(instanceId, { code, signal: null, at: this.clock.now() });
  }

  /** The liveness watch of the instance declares it hung (alive but silent; not stopped). */
  hang(instanceId: string): void {
    const verdict: FailureVerdict = {
      kind: 'hang',
      at: this.clock.now(),
      detail: `no heartbeat from ${instanceId} (scripted hang)`,
      evidence: { phi: 20, lastHeartbeatAgoMs: 5000, procState: 'S', failedProbes: 5 },
    };
    this.#watchOf(instanceId)?.handlers.onHang(verdict);
  }

  /** The health check of the instance fails `failures` times in a row (the verdict changes to unhealthy). */
  unhealthy(instanceId: string, failures = 3): void {
    this.#health(instanceId, false, failures, true);
  }

  /** The health check of the instance passes (the verdict changes to healthy). */
  healthy(instanceId: string): void {
    this.#health(instanceId, true, 0, true);
  }

  /** Another failed health check of an instance already unhealthy (the verdict does not change). */
  stillUnhealthy(instanceId: string, failures: number): void {
    this.#health(instanceId, false, failures, false);
  }

  /** The instance's promotion hook (HTTP) fails: it does not answer. */
  failHook(instanceId: string): void {
    this.#failHooks.add(instanceId);
  }

  /** The next HTTP hook run on any instance fails (does not answer). */
  failNextHook(): void {
    this.#failNextHook = true;
  }

  /** The instance starts but never answers its probe. */
  neverReady(instanceId: string): void {
    this.#neverReady.add(instanceId);
    const inst = this.#instances.get(instanceId);
    if (inst) inst.ready = false;
  }

  /** Starting the instance fails (UNDERSTUDY_ERR_RUNTIME_SPAWN). */
  failStart(instanceId: string): void {
    this.#failStarts.add(instanceId);
  }

  /** An instance left running by an earlier control process (to be adopted). */
  seedRunning(handle: Omit<InstanceHandle, 'exit'>, ports: number[] = []): void {
    this.#instances.set(handle.instanceId, { handle: { ...handle }, ports, ready: true });
  }

  /** The instance's process runs. */
  running(instanceId: string): boolean {
    const i = this.#instances.get(instanceId);
    return i !== undefined && i.handle.exit === undefined;
  }

  /** Whether the instance is being watched (health and heartbeat). */
  watched(instanceId: string): boolean {
    const w = this.#watches.get(instanceId);
    return w !== undefined && !w.signal.aborted;
  }

  // ── Agent ──────────────────────────────────────────────────────────────────────────────────────

  async start(launch: InstanceLaunch): Promise<InstanceHandle> {
    this.log.push(`start ${launch.instanceId}`);
    if (this.#failStarts.has(launch.instanceId))
      throw new UnderstudyError(ErrorCode.RuntimeSpawn, `scripted start failure of ${launch.instanceId}`);
    const pid = this.#nextPid++;
    const handle: InstanceHandle = {
      instanceId: launch.instanceId,
      service: launch.service,
      host: launch.host,
      pid,
      pgid: pid,
      startedAt: this.clock.now(),
      stdoutPath: `/fake/${launch.instanceId}.out.log`,
      stderrPath: `/fake/${launch.instanceId}.err.log`,
      limits: launch.resources ?? {},
      startTimeTicks: pid,
      stateDir: launch.stateDir,
      logMaxBytes: launch.logMaxBytes,
    };
    const ports = Object.entries(launch.env)
      .filter(([k]) => k.startsWith('UNDERSTUDY_PORT_'))
      .map(([, v]) => Number(v));
    this.#instances.set(launch.instanceId, {
      launch,
      handle,
      ports,
      ready: !this.#neverReady.has(launch.instanceId),
    });
    return { ...handle };
  }

  async stop(instanceId: string, _options?: StopOptions): Promise<InstanceExit> {
    this.log.push(`stop ${instanceId}`);
    const inst = this.#instances.get(instanceId);
    if (!inst) throw new UnderstudyError(ErrorCode.RuntimeUnknownInstance, `no instance '${instanceId}'`);
    if (inst.handle.exit) return inst.handle.exit;
    return this.#exit(instanceId, { code: null, signal: 'SIGTERM', at: this.clock.now() })!;
  }

  async kill(instanceId: string, signal: NodeJS.Signals): Promise<void> {
    this.log.push(`kill ${instanceId} ${signal}`);
    if (!this.running(instanceId))
      throw new UnderstudyError(ErrorCode.RuntimeUnknownInstance, `no running instance '${instanceId}'`);
    if (signal === 'SIGKILL' || signal === 'SIGTERM')
      this.#exit(instanceId, { code: null, signal, at: this.clock.now() });
  }

  async fence(instanceId: string): Promise<void> {
    this.log.push(`fence ${instanceId}`);
    if (this.running(instanceId))
      this.#exit(instanceId, { code: null, signal: 'SIGKILL', at: this.clock.now() });
  }

  async adopt(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean> {
    const inst = this.#instances.get(handle.instanceId);
    const ok = inst !== undefined && !inst.handle.exit && inst.handle.pid === handle.pid;
    this.log.push(`adopt ${handle.instanceId} ${ok ? 'ok' : 'gone'}`);
    return ok;
  }

  async instance(instanceId: string): Promise<InstanceHandle | undefined> {
    const inst = this.#instances.get(instanceId);
    return inst ? { ...inst.handle } : undefined;
  }

  async setResources(instanceId: string, limits: ResourceLimits): Promise<void> {
    this.log.push(`resize ${instanceId}`);
    const inst = this.#instances.get(instanceId);
    if (!this.#limits || !inst)
      throw new UnderstudyError(ErrorCode.RuntimeLimits, `limits not supported for ${instanceId}`);
    inst.handle.limits = limits;
  }

  async limitsSupport(): Promise<LimitsSupport> {
    return this.#limits
      ? { supported: true, mechanism: 'cgroup-v2' }
      : { supported: false, reason: 'fake agent without limits' };
  }

  async stats(instanceId: string): Promise<InstanceStats | undefined> {
    if (!this.running(instanceId)) return undefined;
    return { cpuPercent: 1, rssBytes: 1 << 20, readBytes: 0, writeBytes: 0, at: this.clock.now() };
  }

  /** A fake instance has no processes: an empty footprint while it runs. */
  async footprint(instanceId: string): Promise<InstanceFootprint | undefined> {
    if (!this.running(instanceId)) return undefined;
    return { listening: [], connected: [], libraries: [], files: [] };
  }

  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  async allocatePort(): Promise<number> {
    return this.#nextPort++;
  }

  async probe(target: ProbeTarget, _timeoutMs: number): Promise<ProbeResult> {
    const inst = [...this.#instances.values()].find((i) =>
      target.kind === 'exec'
        ? i.launch?.env['UNDERSTUDY_INSTANCE'] === target.env['UNDERSTUDY_INSTANCE']
        : i.ports.includes(target.port),
    );
    const ok = inst !== undefined && !inst.handle.exit && inst.ready;
    return { ok, detail: ok ? 'fake: answers' : 'fake: no answer', latencyMs: 0 };
  }

  watch(watch: InstanceWatch, handlers: InstanceWatchHandlers, signal: AbortSignal): void {
    this.log.push(`watch ${watch.instanceId}`);
    this.#watches.set(watch.instanceId, { handlers, signal });
    // The first health check of a ready instance passes, as a real check would shortly after start.
    if (watch.health && this.#instances.get(watch.instanceId)?.ready)
      setImmediate(() => {
        if (!signal.aborted && this.running(watch.instanceId)) this.healthy(watch.instanceId);
      });
  }

  async runHook(instanceId: string, hook: InstanceHook, _timeoutMs: number): Promise<number | undefined> {
    this.log.push(
      `hook ${instanceId}${hook.signal ? ` ${hook.signal}` : ''}${hook.http ? ` ${hook.http.path}` : ''}`,
    );
    if (!hook.http) return undefined;
    const failNext = this.#failNextHook;
    this.#failNextHook = false;
    if (failNext || this.#failHooks.has(instanceId) || !this.running(instanceId))
      throw new Error(`connect ECONNREFUSED ${this.address}:${hook.http.port}`);
    return 200;
  }

  /** Hooks of external echoes run for real (they are commands or requests the test chose). */
  async runExternalHook(request: HookRequest): Promise<HookResult> {
    this.log.push(`external-hook ${request.name} ${request.env['UNDERSTUDY_INSTANCE'] ?? ''}`);
    return runHookRequest(request);
  }

  async snapshotState(
    source: { host: string; stateDir: string } | undefined,
    targetDir: string,
  ): Promise<void> {
    this.log.push(`snapshot ${source?.stateDir ?? '(empty)'} -> ${targetDir}`);
  }

  async prepareSyncTarget(stateDir: string): Promise<void> {
    this.log.push(`prepare-sync ${stateDir}`);
  }

  async removeState(stateDir: string): Promise<void> {
    this.log.push(`remove-state ${stateDir}`);
  }

  /** Scripted differences per pair of directories (`a|b`); identical unless set. */
  readonly differences = new Map<string, TreeDifference[]>();

  async compareState(aDir: string, bDir: string): Promise<TreeDifference[]> {
    this.log.push(`compare ${aDir} ${bDir}`);
    return this.differences.get(`${aDir}|${bDir}`) ?? [];
  }

  fileSync(options: ServiceFileSyncOptions): FileSync {
    const sync = new FakeFileSync(this.log, options.service);
    this.syncs.set(options.service, sync);
    return sync;
  }

  async hostFacts(): Promise<HostFacts> {
    return { diskLatencyMs: 0, loadPerCore: 0 };
  }

  async close(): Promise<void> {
    for (const id of this.#instances.keys())
      if (this.running(id)) this.#exit(id, { code: null, signal: 'SIGTERM', at: this.clock.now() });
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  #watchOf(instanceId: string): { handlers: InstanceWatchHandlers; signal: AbortSignal } | undefined {
    const w = this.#watches.get(instanceId);
    return w && !w.signal.aborted ? w : undefined;
  }

  #health(instanceId: string, healthy: boolean, failures: number, changed: boolean): void {
    const verdict: HealthVerdict = {
      healthy,
      consecutiveFailures: failures,
      last: { ok: healthy, detail: healthy ? 'fake: ok' : 'fake: HTTP 503', latencyMs: 1 },
      checkedAt: this.clock.now(),
      changed,
    };
    this.#watchOf(instanceId)?.handlers.onHealth(verdict);
  }

  #exit(instanceId: string, exit: InstanceExit): InstanceExit | undefined {
    const inst = this.#instances.get(instanceId);
    if (!inst || inst.handle.exit) return undefined;
    inst.handle.exit = exit;
    this.log.push(`exit ${instanceId}`);
    for (const l of this.#exitListeners) l({ ...inst.handle }, exit);
    return exit;
  }
}

/** A file sync that keeps nothing in sync: every echo is caught up unless told otherwise. */
export class FakeFileSync implements FileSync {
  primary: string | undefined;
  readonly targets = new Map<string, string>();
  /** Echoes that never catch up. */
  readonly lagging = new Set<string>();

  constructor(
    private readonly log: string[],
    readonly service: string,
  ) {}

  async setPrimary(stateDir: string): Promise<void> {
    this.log.push(`sync-source ${this.service} ${stateDir}`);
    this.primary = stateDir;
  }

  async addEcho(id: string, stateDir: string): Promise<void> {
    this.log.push(`sync-target+ ${id}`);
    this.targets.set(id, stateDir);
  }

  async removeEcho(id: string): Promise<void> {
    this.log.push(`sync-target- ${id}`);
    this.targets.delete(id);
  }

  caughtUp(id: string): boolean {
    return this.targets.has(id) && !this.lagging.has(id);
  }

  async waitCaughtUp(id: string): Promise<boolean> {
    return this.caughtUp(id);
  }

  echoes(): EchoFileSyncView[] {
    return [...this.targets.keys()].map((echo) => ({
      echo,
      connected: true,
      lagSeconds: 0,
      lagBytes: 0,
      changeRateBytesPerSec: 0,
      changeRateFilesPerSec: 0,
      wireBytes: 0,
      compressionRatio: 1,
      lastAppliedSeq: 0,
      errors: 0,
      initialSync: null,
    }));
  }

  async close(): Promise<void> {}
}
