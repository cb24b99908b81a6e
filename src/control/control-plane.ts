import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { expandPlaceholders, type LoadedSpec, type ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { ActiveHealthMonitor, type HealthVerdict, type ProbeTarget } from '../health/index.js';
import { allocatePort, type InstanceExit, type InstanceHandle, type ResourceLimits, type Runtime } from '../runtime/index.js';
import type { StateStore } from '../store/index.js';
import { DecisionLog } from './decision-log.js';
import { reconcile, describeExit, type Action } from './reconcile.js';
import type { Decision, InstanceRecord, InstanceRole } from './records.js';
import { restartDelay } from './restart.js';

/** Options of the control plane. */
export interface ControlPlaneOptions {
  spec: LoadedSpec;
  /** Absolute data directory: store, logs, state directories. */
  dataDir: string;
  store: StateStore;
  runtime: Runtime;
  /** Host name instances are placed on. @default 'local' */
  host?: string;
  /** Reconcile period when nothing else triggers it, ms. @default 250 */
  tickMs?: number;
  /** Bytes per instance log file before rotation. @default 10 MiB */
  logMaxBytes?: number;
}

/** The service view served by the API and `understudy status`. */
export interface ServiceView {
  name: string;
  epoch: number;
  echoMode: string;
  desired: { primaries: number; echoes: number };
  instances: InstanceRecord[];
}

const INSTANCE_PREFIX = 'instances/';
const LOOP_DELAY_RESOLUTION_MS = 10;

/**
 * The orchestrator: reconciles the specs (desired) with the runtime and store (actual), executes the
 * actions, and records every action and observation as a {@link Decision}.
 */
export class ControlPlane {
  readonly decisions: DecisionLog;
  readonly #options: Required<Omit<ControlPlaneOptions, 'spec'>> & { spec: LoadedSpec };
  readonly #records = new Map<string, InstanceRecord>();
  readonly #healthAborts = new Map<string, AbortController>();
  /** Instances being stopped on purpose: their exit is not a failure. */
  readonly #stopping = new Set<string>();
  /** Instances being restarted for a failed health check: their exit is a failure. */
  readonly #restarting = new Set<string>();
  readonly #abort = new AbortController();
  readonly #loopDelay: IntervalHistogram;
  #timer: NodeJS.Timeout | undefined;
  #reconciling = false;
  #again = false;
  #closed = false;
  #unsubscribeExit: (() => void) | undefined;

  private constructor(options: ControlPlaneOptions, decisions: DecisionLog) {
    this.#options = { host: 'local', tickMs: 250, logMaxBytes: 10 * 1024 * 1024, ...options };
    this.decisions = decisions;
    this.#loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  }

  /** Creates the control plane and loads recorded instances from the store (it does not start anything yet). */
  static async create(options: ControlPlaneOptions): Promise<ControlPlane> {
    const decisions = await DecisionLog.create({ store: options.store });
    const plane = new ControlPlane(options, decisions);
    for (const r of await options.store.list(INSTANCE_PREFIX)) {
      const rec = JSON.parse(r.value) as InstanceRecord;
      plane.#records.set(rec.id, rec);
    }
    return plane;
  }

  /** The services as loaded from the spec file. */
  get specs(): readonly ServiceSpec[] {
    return this.#options.spec.spec.services;
  }

  /** Starts reconciling: instances are started, watched and restarted per policy. */
  async start(): Promise<void> {
    this.#loopDelay.enable();
    this.#unsubscribeExit = this.#options.runtime.onExit((handle, exit) => this.#onExit(handle, exit));
    // Records left by an earlier control process whose instances are not in this runtime are gone.
    for (const rec of this.#records.values()) {
      if (!this.#options.runtime.get(rec.id) && !['stopped', 'failed'].includes(rec.phase)) {
        rec.phase = 'stopped';
        await this.#save(rec);
      }
    }
    for (const spec of this.specs) await this.#options.store.put(`services/${spec.name}`, JSON.stringify(spec));
    await this.reconcileNow();
    this.#schedule();
  }

  /** Runs one reconcile pass at once (coalesces concurrent calls). */
  async reconcileNow(): Promise<void> {
    if (this.#closed) return;
    if (this.#reconciling) {
      this.#again = true;
      return;
    }
    this.#reconciling = true;
    try {
      do {
        this.#again = false;
        const actions = reconcile(this.specs, [...this.#records.values()], Date.now());
        for (const action of actions) {
          if (this.#closed) return;
          await this.#execute(action);
        }
      } while (this.#again && !this.#closed);
    } finally {
      this.#reconciling = false;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.reconcileNow()
        .catch((err: unknown) => this.#recordError('reconcile', err))
        .finally(() => this.#schedule());
    }, this.#options.tickMs);
    this.#timer.unref();
  }

  async #execute(action: Action): Promise<void> {
    switch (action.type) {
      case 'start': {
        const id = this.#nextInstanceId(action.service);
        const decision = this.decisions.record({
          kind: 'start',
          service: action.service,
          instance: id,
          what: `start ${action.role} ${id}`,
          why: action.why,
          inputs: { slot: action.slot, role: action.role },
          outcome: 'pending',
        });
        await this.#launch(this.#specOf(action.service), id, action.role, action.slot, decision);
        return;
      }
      case 'restart': {
        const rec = this.#records.get(action.instance);
        if (!rec) return;
        const decision = this.decisions.record({
          kind: 'restart',
          service: action.service,
          instance: action.instance,
          what: `restart ${rec.role} ${rec.id}`,
          why: action.why,
          inputs: action.inputs,
          outcome: 'pending',
        });
        rec.restarts.push(Date.now());
        await this.#launch(this.#specOf(action.service), rec.id, rec.role, rec.slot, decision, rec);
        return;
      }
      case 'give-up':
      case 'stop': {
        const rec = this.#records.get(action.instance);
        if (!rec) return;
        const decision = this.decisions.record({
          kind: action.type,
          service: action.service,
          instance: action.instance,
          what: `stop ${rec.role} ${rec.id}`,
          why: action.why,
          inputs: {},
          outcome: 'pending',
        });
        await this.#stopInstance(rec, action.type === 'give-up' ? 'failed' : 'stopped');
        this.decisions.settle(decision, 'ok');
        return;
      }
    }
  }

  #specOf(name: string): ServiceSpec {
    const spec = this.specs.find((s) => s.name === name);
    if (!spec) throw new UnderstudyError(ErrorCode.NotFound, `no service named '${name}'`);
    return spec;
  }

  #nextInstanceId(service: string): string {
    let max = 0;
    for (const rec of this.#records.values()) {
      if (rec.service !== service) continue;
      const n = Number(rec.id.slice(service.length + 1));
      if (Number.isInteger(n) && n > max) max = n;
    }
    return `${service}-${max + 1}`;
  }

  /** Starts (or restarts) one instance; settles the decision with the outcome. */
  async #launch(spec: ServiceSpec, id: string, role: InstanceRole, slot: number, decision: Decision, previous?: InstanceRecord): Promise<void> {
    const { dataDir, host } = this.#options;
    const specDir = this.#options.spec.dir;
    const ports: Record<string, number> = {};
    for (const [name, port] of Object.entries(spec.ports)) {
      ports[name] = previous?.ports[name] ?? (port === 0 ? await allocatePort('127.0.0.1') : port);
    }
    const base = { instance: id, service: spec.name, role, specDir, dataDir, ports, stateDir: '' };
    const stateDir = resolve(dataDir, expandPlaceholders(spec.stateDir, base));
    const values = { ...base, stateDir };
    const limits = this.#limitsFor(spec, role);
    const rec: InstanceRecord = previous ?? {
      id,
      service: spec.name,
      role,
      slot,
      host,
      phase: 'starting',
      ports,
      stateDir,
      restarts: [],
      limits,
      epoch: 0,
    };
    rec.phase = 'starting';
    rec.ports = ports;
    rec.limits = limits;
    delete rec.nextRestartAt;
    delete rec.health;
    this.#records.set(id, rec);
    try {
      const handle = await this.#options.runtime.start({
        instanceId: id,
        service: spec.name,
        host,
        command: spec.command.map((a) => expandPlaceholders(a, values)),
        cwd: resolve(specDir, expandPlaceholders(spec.cwd ?? '.', values)),
        env: {
          ...Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, expandPlaceholders(v, values)])),
          UNDERSTUDY_SERVICE: spec.name,
          UNDERSTUDY_INSTANCE: id,
          UNDERSTUDY_ROLE: role,
          UNDERSTUDY_STATE_DIR: stateDir,
          ...Object.fromEntries(Object.entries(ports).map(([n, p]) => [`UNDERSTUDY_PORT_${n.toUpperCase().replaceAll('-', '_')}`, String(p)])),
        },
        stateDir,
        logDir: resolve(dataDir, 'logs'),
        logMaxBytes: this.#options.logMaxBytes,
        resources: limits,
      });
      this.#applyHandle(rec, handle);
      if (!spec.health) rec.phase = 'running';
      await this.#save(rec);
      this.decisions.settle(decision, `ok: pid ${handle.pid}`);
      if (spec.health) this.#watchHealth(spec, rec);
    } catch (err) {
      rec.phase = 'failed';
      await this.#save(rec);
      this.decisions.settle(decision, `failed: ${(err as Error).message}`);
    }
  }

  #applyHandle(rec: InstanceRecord, handle: InstanceHandle): void {
    rec.pid = handle.pid;
    rec.pgid = handle.pgid;
    rec.startedAt = handle.startedAt;
    rec.stdoutPath = handle.stdoutPath;
    rec.stderrPath = handle.stderrPath;
    rec.limits = handle.limits;
  }

  /** Serving instances get the spec's limits; echoes start at `echoFraction` of them (seed 000). */
  #limitsFor(spec: ServiceSpec, role: InstanceRole): ResourceLimits {
    const fraction = role === 'primary' ? 1 : spec.resources.echoFraction;
    const limits: ResourceLimits = {};
    if (!this.#options.runtime.limitsSupport().supported) return limits;
    if (spec.resources.cpu !== undefined) limits.cpu = spec.resources.cpu * fraction;
    if (spec.resources.memory !== undefined) limits.memoryBytes = Math.max(32 * 1024 * 1024, Math.floor(spec.resources.memory * fraction));
    return limits;
  }

  #watchHealth(spec: ServiceSpec, rec: InstanceRecord): void {
    const health = spec.health;
    if (!health) return;
    this.#healthAborts.get(rec.id)?.abort();
    const abort = new AbortController();
    this.#healthAborts.set(rec.id, abort);
    const portOf = (name: string | undefined): number => rec.ports[name ?? Object.keys(rec.ports)[0] ?? ''] ?? 0;
    let target: ProbeTarget;
    if (health.http) target = { kind: 'http', host: '127.0.0.1', port: portOf(health.http.port), path: health.http.path };
    else if (health.tcp) target = { kind: 'tcp', host: '127.0.0.1', port: portOf(health.tcp.port) };
    else if (health.exec) target = { kind: 'exec', argv: health.exec, cwd: rec.stateDir, env: { UNDERSTUDY_INSTANCE: rec.id } };
    else return;
    ActiveHealthMonitor.start(
      {
        target,
        intervalMs: health.interval,
        timeoutMs: health.timeout,
        failureThreshold: health.failureThreshold,
        startPeriodMs: health.startPeriod,
      },
      (verdict) => this.#onHealth(rec, verdict),
      AbortSignal.any([abort.signal, this.#abort.signal]),
    );
  }

  #onHealth(rec: InstanceRecord, verdict: HealthVerdict): void {
    if (this.#closed || rec.phase === 'exited' || rec.phase === 'stopped' || rec.phase === 'failed') return;
    rec.health = { healthy: verdict.healthy, checkedAt: verdict.checkedAt, detail: verdict.last.detail, consecutiveFailures: verdict.consecutiveFailures };
    if (!verdict.changed) return;
    if (verdict.healthy) {
      rec.phase = 'running';
      void this.#save(rec);
      this.decisions.record({
        kind: 'healthy',
        service: rec.service,
        instance: rec.id,
        what: `${rec.role} ${rec.id} is healthy`,
        why: `health check passed (${verdict.last.detail}, ${verdict.last.latencyMs.toFixed(1)} ms)`,
        inputs: { check: verdict.last },
        outcome: 'recorded',
      });
      return;
    }
    rec.phase = 'unhealthy';
    void this.#save(rec);
    const decision = this.decisions.record({
      kind: 'unhealthy',
      service: rec.service,
      instance: rec.id,
      what: `restart unhealthy ${rec.role} ${rec.id}`,
      why: `${verdict.consecutiveFailures} consecutive health checks failed (last: ${verdict.last.detail})`,
      inputs: { check: verdict.last, consecutiveFailures: verdict.consecutiveFailures },
      outcome: 'pending',
    });
    this.#restarting.add(rec.id);
    this.#options.runtime
      .stop(rec.id, { graceMs: this.#specOf(rec.service).stopGrace })
      .then(() => this.decisions.settle(decision, 'ok: stopped; restart follows the restart policy'))
      .catch((err: unknown) => this.decisions.settle(decision, `failed: ${(err as Error).message}`));
  }

  #onExit(handle: InstanceHandle, exit: InstanceExit): void {
    const rec = this.#records.get(handle.instanceId);
    if (!rec || rec.pid !== handle.pid) return;
    this.#healthAborts.get(rec.id)?.abort();
    this.#healthAborts.delete(rec.id);
    rec.lastExit = exit;
    if (this.#stopping.has(rec.id) || this.#closed) return;
    const forced = this.#restarting.delete(rec.id);
    const spec = this.specs.find((s) => s.name === rec.service);
    const now = Date.now();
    const delay = spec ? restartDelay(spec.restart, rec.restarts, exit, now, forced) : undefined;
    rec.restarts = rec.restarts.filter((t) => spec && now - t < spec.restart.window);
    if (delay === undefined) {
      rec.phase = 'failed';
      this.decisions.record({
        kind: 'give-up',
        service: rec.service,
        instance: rec.id,
        what: `give up on ${rec.role} ${rec.id}`,
        why: `${rec.role} exited (${describeExit(rec)}) and restart policy '${spec?.restart.policy ?? 'none'}' allows no more restarts (${rec.restarts.length} in the window)`,
        inputs: { exit, restartsInWindow: rec.restarts.length, policy: spec?.restart },
        outcome: 'recorded',
      });
    } else {
      rec.phase = 'exited';
      rec.nextRestartAt = now + delay;
      this.decisions.record({
        kind: 'exited',
        service: rec.service,
        instance: rec.id,
        what: `${rec.role} ${rec.id} exited (${describeExit(rec)})`,
        why: forced ? 'stopped after failing health checks' : 'process exit observed by the runtime',
        inputs: { exit, detectedAt: now, detectionMs: now - exit.at, restartInMs: delay },
        outcome: 'recorded',
      });
      setTimeout(() => void this.reconcileNow().catch((err: unknown) => this.#recordError('reconcile', err)), delay).unref();
    }
    void this.#save(rec);
  }

  async #stopInstance(rec: InstanceRecord, phase: 'stopped' | 'failed'): Promise<void> {
    this.#healthAborts.get(rec.id)?.abort();
    this.#stopping.add(rec.id);
    try {
      if (this.#options.runtime.get(rec.id) && !this.#options.runtime.get(rec.id)?.exit) {
        await this.#options.runtime.stop(rec.id, { graceMs: this.#specOf(rec.service).stopGrace });
      }
    } finally {
      this.#stopping.delete(rec.id);
    }
    rec.phase = phase;
    await this.#save(rec);
  }

  /** Restarts one instance on request (API/CLI); recorded as a decision. */
  async restartInstance(id: string, reason: string): Promise<Decision> {
    const rec = this.#records.get(id);
    if (!rec) throw new UnderstudyError(ErrorCode.NotFound, `no instance named '${id}'`);
    const decision = this.decisions.record({
      kind: 'restart',
      service: rec.service,
      instance: id,
      what: `restart ${rec.role} ${id}`,
      why: `requested: ${reason}`,
      inputs: { requested: true },
      outcome: 'pending',
    });
    await this.#stopInstance(rec, 'stopped');
    await this.#launch(this.#specOf(rec.service), rec.id, rec.role, rec.slot, decision, rec);
    return decision;
  }

  async #save(rec: InstanceRecord): Promise<void> {
    if (this.#closed && rec.phase !== 'stopped') return;
    await this.#options.store.put(INSTANCE_PREFIX + rec.id, JSON.stringify(rec));
  }

  #recordError(where: string, err: unknown): void {
    this.decisions.record({
      kind: 'error',
      service: '',
      what: `${where} failed`,
      why: (err as Error).message,
      inputs: {},
      outcome: 'recorded',
    });
  }

  /** Current instances, newest state. */
  instances(): InstanceRecord[] {
    return [...this.#records.values()].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  }

  /** Services with their instances. */
  async services(): Promise<ServiceView[]> {
    const out: ServiceView[] = [];
    for (const spec of this.specs) {
      out.push({
        name: spec.name,
        epoch: await this.#options.store.epoch(spec.name),
        echoMode: spec.echo.mode,
        desired: { primaries: 1, echoes: spec.echo.count },
        instances: this.instances().filter((i) => i.service === spec.name && i.phase !== 'stopped'),
      });
    }
    return out;
  }

  /** Event-loop delay of the control process (ms): keep the data plane's loop free. */
  eventLoopDelay(): { p50Ms: number; p99Ms: number; maxMs: number } {
    // The histogram records the sampling timer's whole period; the delay is what exceeds it.
    const h = this.#loopDelay;
    const ms = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_DELAY_RESOLUTION_MS);
    return { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
  }

  /** Stops every instance gracefully and stops reconciling. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#abort.abort();
    this.#unsubscribeExit?.();
    const grace = Math.max(...this.specs.map((s) => s.stopGrace), 0);
    await this.#options.runtime.close({ graceMs: grace });
    for (const rec of this.#records.values()) {
      if (rec.phase === 'stopped' || rec.phase === 'failed') continue;
      rec.phase = 'stopped';
      await this.#save(rec);
      this.decisions.record({
        kind: 'stop',
        service: rec.service,
        instance: rec.id,
        what: `stop ${rec.role} ${rec.id}`,
        why: 'control plane shutting down',
        inputs: {},
        outcome: 'ok',
      });
    }
    await this.decisions.flush();
    this.#loopDelay.disable();
  }
}
