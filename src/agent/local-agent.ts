import { cp, mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import {
  ActiveHealthMonitor,
  LivenessWatch,
  probe,
  type ProbeResult,
  type ProbeTarget,
} from '../health/index.js';
import {
  allocatePort,
  listGroupProcesses,
  readFootprint,
  type CloseOptions,
  type InstanceExit,
  type InstanceFootprint,
  type InstanceHandle,
  type InstanceLaunch,
  type InstanceStats,
  type LimitsSupport,
  type ResourceLimits,
  type Runtime,
  type StopOptions,
  runHookRequest,
  type HookRequest,
  type HookResult,
} from '../runtime/index.js';
import { verifyTrees, type TreeDifference } from '../sync/index.js';
import type {
  Agent,
  FileSync,
  HostFacts,
  InstanceHook,
  InstanceWatch,
  InstanceWatchHandlers,
} from './agent.js';
import { DiskLatency, loadPerCore } from './host-facts.js';
import { ServiceFileSync, type ServiceFileSyncOptions } from './service-file-sync.js';

/** The loopback address: where the instances of the local host listen. */
export const LOOPBACK = '127.0.0.1';

/** Options of {@link LocalAgent}. */
export interface LocalAgentOptions {
  runtime: Runtime;
  /** Host name of this agent (`InstanceRecord.host`). @default 'local' */
  host?: string;
  /** Address its instances listen on. @default '127.0.0.1' */
  address?: string;
}

/**
 * The agent of the host the control process runs on (embedded mode): processes through the runtime
 * driver, probes and heartbeats through `health/`, state directories on the local file system, file
 * sync through {@link ServiceFileSync}, host facts from /proc.
 */
export class LocalAgent implements Agent {
  readonly host: string;
  readonly address: string;
  readonly #runtime: Runtime;
  readonly #disk = new DiskLatency();

  constructor(options: LocalAgentOptions) {
    this.#runtime = options.runtime;
    this.host = options.host ?? 'local';
    this.address = options.address ?? LOOPBACK;
  }

  get runtimeName(): string {
    return this.#runtime.name;
  }

  start(launch: InstanceLaunch): Promise<InstanceHandle> {
    return this.#runtime.start(launch);
  }

  stop(instanceId: string, options?: StopOptions): Promise<InstanceExit> {
    return this.#runtime.stop(instanceId, options);
  }

  async kill(instanceId: string, signal: NodeJS.Signals): Promise<void> {
    this.#runtime.signal(instanceId, signal);
  }

  async fence(instanceId: string): Promise<void> {
    try {
      this.#runtime.signal(instanceId, 'SIGKILL');
    } catch {
      // already gone: fenced
    }
  }

  adopt(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean> {
    return this.#runtime.adopt(handle);
  }

  async instance(instanceId: string): Promise<InstanceHandle | undefined> {
    return this.#runtime.get(instanceId);
  }

  setResources(instanceId: string, limits: ResourceLimits): Promise<void> {
    return this.#runtime.setResources(instanceId, limits);
  }

  async limitsSupport(): Promise<LimitsSupport> {
    return this.#runtime.limitsSupport();
  }

  stats(instanceId: string): Promise<InstanceStats | undefined> {
    return this.#runtime.stats(instanceId);
  }

  async footprint(instanceId: string): Promise<InstanceFootprint | undefined> {
    const h = this.#runtime.get(instanceId);
    if (!h || h.exit) return undefined;
    const pids = (await listGroupProcesses(h.pgid)).map((p) => p.pid);
    return readFootprint(pids.length > 0 ? pids : [h.pid]);
  }

  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void {
    return this.#runtime.onExit(listener);
  }

  allocatePort(): Promise<number> {
    return allocatePort(this.address);
  }

  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    return probe(target, timeoutMs);
  }

  watch(watch: InstanceWatch, handlers: InstanceWatchHandlers, signal: AbortSignal): void {
    if (watch.health) ActiveHealthMonitor.start(watch.health, handlers.onHealth, signal);
    if (!watch.liveness) return;
    const { target, ...liveness } = watch.liveness;
    LivenessWatch.start({ ...liveness, ...(target ? { target } : {}) }, handlers.onHang, signal);
  }

  async runHook(instanceId: string, hook: InstanceHook, timeoutMs: number): Promise<number | undefined> {
    if (hook.signal) this.#runtime.signal(instanceId, hook.signal);
    if (!hook.http) return undefined;
    const res = await fetch(`http://${this.address}:${hook.http.port}${hook.http.path}`, {
      method: 'POST',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return res.status;
  }

  async runExternalHook(request: HookRequest): Promise<HookResult> {
    const http = request.http ? { ...request.http, address: this.address } : undefined;
    return runHookRequest({ ...request, ...(http ? { http } : {}) });
  }

  async snapshotState(
    source: { host: string; stateDir: string } | undefined,
    targetDir: string,
  ): Promise<void> {
    if (source && source.host !== this.host)
      throw new UnderstudyError(
        ErrorCode.StateDir,
        `cannot copy the state directory ${source.stateDir} from host '${source.host}' to '${this.host}': copies between hosts are not supported yet`,
      );
    await rm(targetDir, { recursive: true, force: true });
    await mkdir(targetDir, { recursive: true, mode: 0o700 });
    if (source)
      await cp(source.stateDir, targetDir, { recursive: true, force: true, verbatimSymlinks: true });
  }

  async prepareSyncTarget(stateDir: string): Promise<void> {
    // Created owner-only first (the sync would create it with the default mode).
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await mkdir(syncJournalOf(stateDir), { recursive: true, mode: 0o700 });
  }

  async removeState(stateDir: string): Promise<void> {
    await rm(stateDir, { recursive: true, force: true });
    await rm(syncJournalOf(stateDir), { recursive: true, force: true });
  }

  compareState(aDir: string, bDir: string): Promise<TreeDifference[]> {
    return verifyTrees(aDir, bDir);
  }

  fileSync(options: ServiceFileSyncOptions): FileSync {
    return new ServiceFileSync(options);
  }

  async hostFacts(): Promise<HostFacts> {
    return { diskLatencyMs: this.#disk.sample(), loadPerCore: loadPerCore() };
  }

  close(options?: CloseOptions): Promise<void> {
    return this.#runtime.close(options);
  }
}

/** The file sync's journal of an echo's state directory: the sibling `.<name>.understudy-sync`. */
export function syncJournalOf(stateDir: string): string {
  return join(dirname(stateDir), `.${basename(stateDir)}.understudy-sync`);
}
