import { resolve } from 'node:path';
import type { HookResult } from '../agent/index.js';
import { expandPlaceholders, type ExternalHookSpec, type ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { LaunchContext } from './instance-launch.js';
import type { InstanceRecord } from './records.js';
import type { ServingSetHost } from './serving-set.js';

/** The hooks of an external echo (docs/recipes.md, "The hook contract"). */
export type ExternalHookName = 'prepare' | 'follow' | 'lag' | 'promote' | 'fence' | 'rejoin';

/** One side of a hook's context: an instance and the address of its host. */
export interface HookParty {
  rec: InstanceRecord;
  /** The address instances on its host are reached at. */
  address: string;
}

/** What a hook is run about. */
export interface HookCall {
  hook: ExternalHookName;
  /** The instance the hook acts on. */
  target: HookParty;
  /** The primary it follows (or replaces, or that replaced it); absent when there is none. */
  primary: HookParty | undefined;
  epoch: number;
  /** The target was the primary before (a rejoin). */
  rejoin: boolean;
}

/** The routed port of an instance: `routing.port`, else its first port (0 without ports). */
export function routedPort(spec: ServiceSpec, rec: InstanceRecord): number {
  const name = spec.routing.port ?? Object.keys(spec.ports)[0];
  return (name !== undefined ? rec.ports[name] : undefined) ?? 0;
}

/**
 * The hook's context as environment variables (and, for an HTTP hook, its JSON body): the names the
 * contract of docs/recipes.md promises. Pure.
 */
export function hookEnv(spec: ServiceSpec, call: HookCall, timeoutMs: number): Record<string, string> {
  const { target, primary } = call;
  const env: Record<string, string> = {
    UNDERSTUDY_HOOK: call.hook,
    UNDERSTUDY_SERVICE: spec.name,
    UNDERSTUDY_INSTANCE: target.rec.id,
    UNDERSTUDY_HOST: target.address,
    UNDERSTUDY_PORT: String(routedPort(spec, target.rec)),
    UNDERSTUDY_STATE_DIR: target.rec.stateDir,
    UNDERSTUDY_EPOCH: String(call.epoch),
    UNDERSTUDY_REJOIN: call.rejoin ? '1' : '0',
    UNDERSTUDY_HOOK_TIMEOUT_MS: String(timeoutMs),
  };
  for (const [name, port] of Object.entries(target.rec.ports))
    env[`UNDERSTUDY_PORT_${name.toUpperCase().replaceAll('-', '_')}`] = String(port);
  if (primary) {
    env['UNDERSTUDY_PRIMARY_INSTANCE'] = primary.rec.id;
    env['UNDERSTUDY_PRIMARY_HOST'] = primary.address;
    env['UNDERSTUDY_PRIMARY_PORT'] = String(routedPort(spec, primary.rec));
    env['UNDERSTUDY_PRIMARY_STATE_DIR'] = primary.rec.stateDir;
  }
  return env;
}

/** The last line of a text, trimmed (a hook's stderr in an error message). */
const lastLine = (text: string): string =>
  text
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1)
    ?.slice(0, 300) ?? '';

/** The error of a failed hook run: names the hook, the instance, the exit or timeout, stderr's last line. */
export function hookError(hook: ExternalHookName, instance: string, r: HookResult): UnderstudyError {
  const how = r.timedOut
    ? 'did not finish within its timeout (its process group was killed)'
    : r.status !== undefined
      ? `answered HTTP ${r.status}`
      : r.signal
        ? `was ended by ${r.signal}`
        : r.exitCode === null || r.exitCode === undefined
          ? 'could not run'
          : `exited with status ${r.exitCode}`;
  const why = lastLine(r.stderr) || lastLine(r.stdout);
  return new UnderstudyError(
    ErrorCode.ExternalHook,
    `the ${hook} hook of ${instance} ${how}${why ? `: ${why}` : ''}`,
    {
      details: {
        hook,
        instance,
        timedOut: r.timedOut,
        ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
        ...(r.status !== undefined ? { status: r.status } : {}),
      },
    },
  );
}

/** A lag reading: `{"lagBytes":N}`, optionally `lagSeconds`; a missing or null field is unknown. */
export interface LagReading {
  lagBytes?: number;
  lagSeconds?: number;
}

/**
 * Parses the `lag` hook's output (one JSON object). Thrown: UNDERSTUDY_ERR_EXTERNAL_HOOK when it is not
 * a JSON object or a field is neither a non-negative number nor null.
 */
export function parseLag(instance: string, stdout: string): LagReading {
  const bad = (why: string): UnderstudyError =>
    new UnderstudyError(
      ErrorCode.ExternalHook,
      `the lag hook of ${instance} printed ${why}; expected one JSON object such as {"lagBytes":0}`,
      { details: { hook: 'lag', instance } },
    );
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    throw bad(stdout.trim() ? `no JSON (${JSON.stringify(stdout.trim().slice(0, 80))})` : 'nothing');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(`not an object (${JSON.stringify(v)})`);
  const out: LagReading = {};
  for (const field of ['lagBytes', 'lagSeconds'] as const) {
    const x = (v as Record<string, unknown>)[field];
    if (x === undefined || x === null) continue;
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0)
      throw bad(`${field} ${JSON.stringify(x)}, not a non-negative number`);
    out[field] = x;
  }
  return out;
}

/** How often a switchover's catch-up wait reads the echo's lag again, ms. */
const CATCH_UP_POLL_MS = 50;

/** What a planned switchover's wait for an external echo found ({@link ExternalEchoes.catchUp}). */
export interface ExternalCatchUp {
  /** A reading said 0 bytes behind (or there is no lag hook to ask). */
  caughtUp: boolean;
  /** The first known lag after the old primary stopped taking writes: what the switchover waited for. */
  firstLagBytes?: number;
  /** The last known lag (0 when caught up). */
  lagBytes?: number;
  /** Lag hook runs. */
  readings: number;
  /** How long it waited, ms. */
  waitedMs: number;
  /** The last reading's error, when it failed. */
  error?: string;
  /** The spec declares no lag hook: nothing to wait for. */
  noLagHook?: true;
}

/** What the external echoes need of the instance supervisor. */
export interface ExternalEchoHost extends ServingSetHost {
  readonly launchContext: LaunchContext;
}

/** The lag of one external echo, as the last `lag` hook said, shown by `status` and exported as a metric. */
export interface ExternalEchoView {
  instance: string;
  lagBytes?: number;
  lagSeconds?: number;
  /** When it was read (ms); absent: never read successfully. */
  at?: number;
  /** The last reading's error, until one succeeds. */
  error?: string;
}

/**
 * The external echoes of every service (`echo.mode: external`): runs their hooks through the agent of
 * each instance's host, and keeps the last lag reading of each echo.
 */
export class ExternalEchoes {
  readonly #lag = new Map<string, ExternalEchoView>();
  readonly #inFlight = new Set<string>();
  readonly #lastRun = new Map<string, number>();

  constructor(private readonly host: ExternalEchoHost) {}

  /** Whether the service keeps external echoes. */
  static wanted(spec: ServiceSpec): boolean {
    return spec.echo.mode === 'external' && spec.echo.external !== undefined;
  }

  /** The hook of a spec by name (`rejoin` falls back to `follow`); undefined when not declared. */
  static hookOf(spec: ServiceSpec, name: ExternalHookName): ExternalHookSpec | undefined {
    const ext = spec.echo.external;
    if (!ext) return undefined;
    return name === 'rejoin' ? (ext.rejoin ?? ext.follow) : ext[name];
  }

  /** The party of a record: it and its host's address. */
  party(rec: InstanceRecord): HookParty {
    return { rec, address: this.host.agents.of(rec).address };
  }

  /**
   * Runs one hook; resolves with its output. Nothing happens (undefined) when the spec does not declare
   * it. Thrown: UNDERSTUDY_ERR_EXTERNAL_HOOK when it fails or times out.
   */
  async run(spec: ServiceSpec, call: HookCall): Promise<string | undefined> {
    const hook = ExternalEchoes.hookOf(spec, call.hook);
    if (!hook) return undefined;
    const timeoutMs = hook.timeout ?? spec.echo.external?.timeout ?? 5000;
    const ctx = this.host.launchContext;
    const rec = call.target.rec;
    const values = {
      instance: rec.id,
      service: spec.name,
      role: rec.role,
      specDir: ctx.specDir,
      dataDir: ctx.dataDir,
      ports: rec.ports,
      stateDir: rec.stateDir,
    };
    // The service's own env (as its instance gets it), then the contract's variables, which win.
    const env = {
      ...Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, expandPlaceholders(v, values)])),
      ...hookEnv(spec, call, timeoutMs),
    };
    const cwd = resolve(ctx.specDir, expandPlaceholders(spec.cwd ?? '.', values));
    const httpPort = hook.http
      ? hook.http.port !== undefined
        ? (rec.ports[hook.http.port] ?? 0)
        : routedPort(spec, rec)
      : 0;
    const result = await this.host.agents
      .of(rec)
      .runExternalHook({
        name: call.hook,
        ...(hook.exec
          ? { exec: { argv: hook.exec.map((arg) => expandPlaceholders(arg, values)), cwd } }
          : {}),
        ...(hook.http ? { http: { port: httpPort, path: hook.http.path } } : {}),
        env,
        timeoutMs,
      })
      .catch((err: unknown): HookResult => ({
        ok: false,
        timedOut: false,
        exitCode: null,
        stdout: '',
        stderr: `its host's agent did not run it: ${(err as Error).message}`,
        ms: 0,
      }));
    if (!result.ok) throw hookError(call.hook, rec.id, result);
    return result.stdout;
  }

  /** The current primary of a service other than `except`, if any. */
  primaryOf(service: string, except?: string): InstanceRecord | undefined {
    return this.host
      .instancesOf(service)
      .find((i) => i.role === 'primary' && i.phase === 'running' && i.id !== except);
  }

  /**
   * Starts a lag reading of every running external echo whose last one is `lagInterval` old; each runs
   * in the background (a slow hook holds up nothing else), at most one per echo at a time.
   */
  sampleLag(specs: readonly ServiceSpec[], now: number): void {
    for (const spec of specs) {
      if (!ExternalEchoes.wanted(spec) || !spec.echo.external?.lag) continue;
      const primary = this.primaryOf(spec.name);
      for (const rec of this.host.instancesOf(spec.name)) {
        if (rec.role !== 'echo' || rec.phase !== 'running' || this.#inFlight.has(rec.id)) continue;
        if (now - (this.#lastRun.get(rec.id) ?? -Infinity) < spec.echo.external.lagInterval) continue;
        if (!this.host.agents.has(rec.host)) continue;
        this.#lastRun.set(rec.id, now);
        this.#inFlight.add(rec.id);
        void this.readLag(spec, rec, primary).finally(() => this.#inFlight.delete(rec.id));
      }
    }
    const live = new Set(specs.flatMap((s) => this.host.instancesOf(s.name).map((i) => i.id)));
    for (const id of this.#lag.keys()) if (!live.has(id)) this.#lag.delete(id);
  }

  /** Runs the lag hook of one echo and keeps the reading (or its error); never throws. */
  async readLag(spec: ServiceSpec, rec: InstanceRecord, primary: InstanceRecord | undefined): Promise<void> {
    try {
      const out = await this.run(spec, {
        hook: 'lag',
        target: this.party(rec),
        primary: primary ? this.party(primary) : undefined,
        epoch: rec.epoch,
        rejoin: false,
      });
      const reading = parseLag(rec.id, out ?? '');
      this.#lag.set(rec.id, { instance: rec.id, ...reading, at: this.host.clock.now() });
    } catch (err) {
      const prev = this.#lag.get(rec.id);
      this.#lag.set(rec.id, {
        instance: rec.id,
        ...(prev?.at !== undefined ? { at: prev.at } : {}),
        error: (err as Error).message,
      });
    }
  }

  /**
   * Promotes an external echo (the `promote` hook), the new epoch already fenced in.
   * Thrown: UNDERSTUDY_ERR_FAILOVER (with the hook's error as cause) when it fails, so that the failover
   * tries the next candidate.
   */
  async promote(
    spec: ServiceSpec,
    target: InstanceRecord,
    old: InstanceRecord | undefined,
    epoch: number,
  ): Promise<void> {
    try {
      await this.run(spec, {
        hook: 'promote',
        target: this.party(target),
        primary: old && this.host.agents.has(old.host) ? this.party(old) : undefined,
        epoch,
        rejoin: false,
      });
    } catch (err) {
      throw new UnderstudyError(ErrorCode.Failover, (err as Error).message, {
        cause: err,
        ...(err instanceof UnderstudyError && err.details ? { details: err.details } : {}),
      });
    } finally {
      this.forget(target.id);
    }
  }

  /**
   * The `fence` hook on the deposed primary, after its process group was killed. Returns what to record
   * (`ok` or the error) or undefined when the spec declares none; never throws: the failover goes on.
   */
  async fence(
    spec: ServiceSpec,
    old: InstanceRecord,
    promoted: InstanceRecord,
    epoch: number,
  ): Promise<string | undefined> {
    if (!ExternalEchoes.hookOf(spec, 'fence') || !this.host.agents.has(old.host)) return undefined;
    return this.run(spec, {
      hook: 'fence',
      target: this.party(old),
      primary: this.party(promoted),
      epoch,
      rejoin: false,
    }).then(
      () => 'ok',
      (err: unknown) => (err as Error).message,
    );
  }

  /**
   * Makes a ready echo follow the primary (`follow`, or `rejoin` for a deposed primary) as a recorded
   * decision. Returns whether it succeeded; a failure marks the echo not in sync.
   */
  async follow(
    spec: ServiceSpec,
    rec: InstanceRecord,
    primary: InstanceRecord | undefined,
    rejoin: boolean,
  ): Promise<boolean> {
    const hook = rejoin ? 'rejoin' : 'follow';
    if (!ExternalEchoes.hookOf(spec, hook)) return true;
    const decision = this.host.decisions.record({
      kind: `external-${hook}`,
      service: spec.name,
      instance: rec.id,
      what: `${rec.id} follows ${primary?.id ?? '(no primary)'} (${hook} hook)`,
      why: rejoin ? 'the deposed primary rejoins as an echo' : 'a new external echo',
      inputs: { primary: primary?.id },
      outcome: { status: 'pending' },
    });
    try {
      await this.run(spec, {
        hook,
        target: this.party(rec),
        primary: primary ? this.party(primary) : undefined,
        epoch: rec.epoch,
        rejoin,
      });
      this.forget(rec.id);
      this.host.decisions.settle(decision, 'ok', `${rec.id} follows ${primary?.id ?? '(no primary)'}`);
      return true;
    } catch (err) {
      this.markUnsynced(rec.id, (err as Error).message);
      this.host.decisions.settle(decision, 'failed', (err as Error).message);
      return false;
    }
  }

  /**
   * A planned switchover's wait (the old primary no longer takes writes: the router fenced it): runs the
   * echo's `lag` hook again and again — fresh readings, never one taken before the cut — until it says
   * 0 bytes behind, or `timeoutMs` has passed. Never throws: a failing reading is kept as `error` and
   * the wait goes on. Without a lag hook it cannot know, and says so (`caughtUp: true`, `noLagHook`).
   */
  async catchUp(
    spec: ServiceSpec,
    target: InstanceRecord,
    old: InstanceRecord,
    timeoutMs: number,
  ): Promise<ExternalCatchUp> {
    if (!spec.echo.external?.lag) return { caughtUp: true, noLagHook: true, readings: 0, waitedMs: 0 };
    const started = Date.now();
    const out: ExternalCatchUp = { caughtUp: false, readings: 0, waitedMs: 0 };
    for (;;) {
      try {
        const reading = parseLag(
          target.id,
          (await this.run(spec, {
            hook: 'lag',
            target: this.party(target),
            primary: this.party(old),
            epoch: target.epoch,
            rejoin: false,
          })) ?? '',
        );
        out.readings++;
        delete out.error;
        if (reading.lagBytes !== undefined) {
          out.firstLagBytes ??= reading.lagBytes;
          out.lagBytes = reading.lagBytes;
        }
        if (reading.lagBytes === 0) out.caughtUp = true;
      } catch (err) {
        out.readings++;
        out.error = (err as Error).message;
      }
      out.waitedMs = Date.now() - started;
      if (out.caughtUp || out.waitedMs >= timeoutMs) break;
      await new Promise((r) => setTimeout(r, Math.min(CATCH_UP_POLL_MS, timeoutMs - out.waitedMs)));
    }
    if (out.caughtUp)
      this.#lag.set(target.id, { instance: target.id, lagBytes: 0, at: this.host.clock.now() });
    return out;
  }

  /**
   * Resolves true once a lag reading of the echo says 0 bytes behind (at once without a lag hook), false
   * after `timeoutMs`.
   */
  async waitInSync(id: string, spec: ServiceSpec, timeoutMs: number): Promise<boolean> {
    if (!spec.echo.external?.lag) return true;
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.lagBytes(id) === 0) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /** Forgets an echo's lag (it was promoted, or has to prove it follows again). */
  forget(id: string): void {
    this.#lag.delete(id);
    this.#lastRun.delete(id);
  }

  /** Marks an echo as not in sync (its follow hook failed): it is the last failover candidate. */
  markUnsynced(id: string, error: string): void {
    this.#lag.set(id, { instance: id, error });
  }

  /** The known lag of an echo in bytes; undefined: unknown (never read, or the last reading failed). */
  lagBytes(id: string): number | undefined {
    const v = this.#lag.get(id);
    return v?.error === undefined ? v?.lagBytes : undefined;
  }

  /** The lag views of a service's echoes, for `status` and the metrics. */
  views(service: string): ExternalEchoView[] {
    return this.host
      .instancesOf(service)
      .filter((i) => i.role === 'echo')
      .map((i) => this.#lag.get(i.id) ?? { instance: i.id });
  }
}
