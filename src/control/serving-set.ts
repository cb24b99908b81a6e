import type { AgentRegistry, Clock } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import type { FailureVerdict, HealthVerdict } from '../health/index.js';
import type { ControlTimeouts } from './control-plane-options.js';
import type { DecisionLog } from './decision-log.js';
import { limitsFor } from './instance-launch.js';
import { moveInstance } from './instance-transition.js';
import { transferState } from '../replication/index.js';
import type { InstanceRecord } from './records.js';
import { stateTokenFor } from './state-token.js';
import type { ServiceRegistry } from './service-registry.js';

/** What changing a serving set needs from the control plane. */
export interface ServingSetHost {
  /** The agents of the hosts instances run on: the only way control reaches an instance. */
  readonly agents: AgentRegistry;
  readonly clock: Clock;
  readonly timeouts: ControlTimeouts;
  readonly decisions: DecisionLog;
  specOf(service: string): ServiceSpec;
  instancesOf(service: string): InstanceRecord[];
  /** The data planes and file syncs of the services. */
  readonly services: ServiceRegistry;
  save(rec: InstanceRecord): Promise<void>;
  /** Told which shadow fed a new serving instance (recycled once that one is operational). @default none */
  readonly recycler?: FeedListener | undefined;
}

/** Told which shadow fed a new serving instance its runtime state (`RecycleWatch` is one). */
export interface FeedListener {
  fed(feeder: InstanceRecord, target: InstanceRecord, at: number): void;
}

/**
 * Points the router at the running primaries of a service (its serving set, by slot) and mirrors to
 * its running shadows. `leaving` is left out even if still marked running (it just exited).
 */
export function refreshServing(host: ServingSetHost, service: string, leaving?: string): void {
  const plane = host.services.plane(service);
  if (!plane) return;
  const spec = host.specOf(service);
  const mine = host.instancesOf(service).filter((i) => i.phase === 'running' && i.id !== leaving);
  const serving = mine.filter((i) => i.role === 'primary').sort((a, b) => a.slot - b.slot);
  const [only] = serving;
  // One primary: switch to it at once (raising the router's epoch if it was promoted under a newer
  // one). Several: members that join (scale-out, back from unready) ramp up over routing.slowStart.
  if (serving.length === 1 && only) plane.setPrimary(only, only.epoch);
  else plane.setServing(serving, spec.routing.slowStart);
  if (spec.shadow.count > 0 || spec.shadow.onForecast)
    plane.setShadows(
      mine.filter((i) => i.role === 'shadow'),
      spec.shadow.sample,
    );
  refreshWarmReads(host, service, leaving);
}

/**
 * Cache warming (`echo.warmReads`): points the router's sampled copies of live reads at the running
 * echoes of a service (the warm pool). `leaving` is left out.
 */
export function refreshWarmReads(host: ServingSetHost, service: string, leaving?: string): void {
  const plane = host.services.plane(service);
  const spec = host.specOf(service);
  if (!plane || spec.routing.protocol !== 'http') return;
  if (spec.echo.warmReads <= 0) {
    plane.setWarmReads([], 0);
    return;
  }
  const echoes = host
    .instancesOf(service)
    .filter((i) => i.role === 'echo' && i.phase === 'running' && i.id !== leaving);
  plane.setWarmReads(echoes, spec.echo.warmReads);
}

/** Gives an instance the limits of its (new) role through its agent, when limits are supported. */
export async function resizeForRole(
  host: ServingSetHost,
  rec: InstanceRecord,
  spec: ServiceSpec,
): Promise<void> {
  const agent = host.agents.of(rec);
  const supported = (await agent.limitsSupport()).supported;
  const limits = limitsFor(spec, rec.role, supported);
  if (Object.keys(limits).length === 0 || !(await agent.instance(rec.id))) return;
  await agent
    .setResources(rec.id, limits)
    .then(() => (rec.limits = limits))
    .catch(() => undefined);
}

/**
 * Scale-out by promotion (seed 001: pre-provisioned instances): a ready warm echo joins the serving set.
 * With `stateTransfer`, it first receives a serving instance's runtime state ({@link transferRuntimeState})
 * and answers copies of live reads ({@link warmUpCodePaths}).
 * It stops receiving file sync, gets the full serving limits and is added to the router — a metadata
 * operation, no process start (it ramps up over `routing.slowStart`). Recorded as a decision with the
 * time it took.
 */
export async function promoteIntoServing(
  host: ServingSetHost,
  echo: InstanceRecord,
  why: string,
): Promise<void> {
  const t0 = performance.now();
  const spec = host.specOf(echo.service);
  const decision = host.decisions.record({
    kind: 'promote-echo',
    service: echo.service,
    instance: echo.id,
    what: `promote warm echo ${echo.id} into the serving set`,
    why,
    inputs: { slot: echo.slot },
    outcome: { status: 'pending' },
  });
  // Its runtime state first, while it is still an echo: nothing can route to it before it has it.
  // Then its request path, on copies of live reads (caches full, code still cold).
  if (echo.phase === 'running') {
    const feeder = await transferRuntimeState(host, echo, spec);
    if (feeder) host.recycler?.fed(feeder, echo, host.clock.now());
    const w = await warmUpCodePaths(host, echo, spec);
    if (w) decision.inputs = { ...decision.inputs, warmUp: w };
  }
  if (!moveInstance(host.decisions, echo, 'promote')) {
    host.decisions.settle(decision, 'failed', `${echo.id} cannot be promoted from phase '${echo.phase}'`);
    return;
  }
  await host.services.files(echo.service)?.removeEcho(echo.id);
  echo.epoch = host.services.plane(echo.service)?.router.epoch ?? echo.epoch;
  await resizeForRole(host, echo, spec);
  await host.save(echo);
  refreshServing(host, echo.service);
  const servesAfterMs = Number((performance.now() - t0).toFixed(1));
  // It ramps up only when it joins others (a lone primary takes all traffic at once).
  const peers = host.instancesOf(echo.service).filter((i) => i.role === 'primary' && i.phase === 'running');
  const slowStartMs = peers.length > 1 ? spec.routing.slowStart : 0;
  decision.inputs = { ...decision.inputs, servesAfterMs, slowStartMs };
  host.decisions.settle(
    decision,
    'ok',
    `${echo.id} serves ${servesAfterMs.toFixed(1)} ms after the decision (no cold start)` +
      (slowStartMs > 0 ? `, ramping up to its full share over ${slowStartMs} ms` : ''),
  );
}

/**
 * Runtime-state transfer (`stateTransfer` in the spec): before `target` serves, the state of a running
 * shadow (seed 001: the pre-provisioned instance, its caches warmed by the mirrored live traffic, and
 * exporting from it costs the serving set nothing) or else of the first running serving instance is
 * streamed into it (export → import, each end's token, bounded and timed). Recorded as a
 * `state-transfer` decision with the bytes and time; a failure is recorded with its reason and the
 * instance serves without the state (a cold cache, not an outage). Resolves with the shadow that fed
 * it, if one did (it is recycled once `target` is operational, see `RecycleWatch`).
 */
export async function transferRuntimeState(
  host: ServingSetHost,
  target: InstanceRecord,
  spec: ServiceSpec,
): Promise<InstanceRecord | undefined> {
  const st = spec.stateTransfer;
  const plane = host.services.plane(target.service);
  if (!st || !plane || spec.routing.protocol !== 'http') return undefined;
  const running = host
    .instancesOf(target.service)
    .filter((i) => i.phase === 'running' && i.id !== target.id)
    .sort((a, b) => a.slot - b.slot);
  const source = running.find((i) => i.role === 'shadow') ?? running.find((i) => i.role === 'primary');
  if (!source) return undefined;
  const decision = host.decisions.record({
    kind: 'state-transfer',
    service: target.service,
    instance: target.id,
    what: `stream the runtime state of ${source.id} into ${target.id} before it serves`,
    why:
      source.role === 'shadow'
        ? 'stateTransfer is set: a new serving instance starts with the warm shadow’s caches'
        : 'stateTransfer is set: a new serving instance starts with the running one’s caches',
    inputs: { from: source.id, export: st.export, import: st.import },
    outcome: { status: 'pending' },
  });
  try {
    const r = await transferState({
      from: { ...plane.endpointOf(source), token: stateTokenFor(source.id) },
      to: { ...plane.endpointOf(target), token: stateTokenFor(target.id) },
      exportPath: st.export,
      importPath: st.import,
      timeoutMs: st.timeout,
      maxBytes: st.maxBytes,
    });
    decision.inputs = { ...decision.inputs, bytes: r.bytes, ms: r.ms };
    host.decisions.settle(decision, 'ok', `${r.bytes} bytes in ${r.ms.toFixed(1)} ms`);
    return source.role === 'shadow' ? source : undefined;
  } catch (err) {
    host.decisions.settle(
      decision,
      'failed',
      `${(err as Error).message}; ${target.id} serves without the transferred state`,
    );
    return undefined;
  }
}

/**
 * Warm-up before serving (`stateTransfer.warmUpReads`): the router replays its sample of recent live
 * reads to the instance at full speed — or, with an empty sample, copies every live read to it — until
 * it has answered that many or `warmUpTimeout` has passed (see `Router.warmUp`).
 * Resolves with what it did, or undefined when it is off (no `stateTransfer`, 0 reads, TCP routing,
 * no router).
 */
export async function warmUpCodePaths(
  host: ServingSetHost,
  target: InstanceRecord,
  spec: ServiceSpec,
): Promise<
  { reads: number; completed: number; ms: number; ended: string; source: string; sampled: number } | undefined
> {
  const st = spec.stateTransfer;
  const plane = host.services.plane(target.service);
  if (!st || st.warmUpReads <= 0 || !plane || spec.routing.protocol !== 'http') return undefined;
  const w = await plane.router.warmUp(
    { id: target.id, ...plane.endpointOf(target) },
    st.warmUpReads,
    st.warmUpTimeout,
  );
  return {
    reads: st.warmUpReads,
    completed: w.completed,
    ms: w.ms,
    ended: w.ended,
    source: w.source,
    sampled: w.sampled,
  };
}

/**
 * Scale-in into the warm pool: the instance leaves the router first (in-flight requests drain), then
 * becomes an echo at the echo limits, its state kept in sync again.
 */
export async function demoteToPool(host: ServingSetHost, rec: InstanceRecord, why: string): Promise<void> {
  const spec = host.specOf(rec.service);
  const decision = host.decisions.record({
    kind: 'demote',
    service: rec.service,
    instance: rec.id,
    what: `move ${rec.id} from the serving set into the warm pool`,
    why,
    inputs: { slot: rec.slot },
    outcome: { status: 'pending' },
  });
  if (!moveInstance(host.decisions, rec, 'demote')) {
    host.decisions.settle(decision, 'failed', `${rec.id} is a ${rec.role}, not a serving instance`);
    return;
  }
  refreshServing(host, rec.service);
  await resizeForRole(host, rec, spec);
  await host.save(rec);
  await host.services.files(rec.service)?.addEcho(rec.id, rec.stateDir);
  host.decisions.settle(decision, 'ok', 'drained from the router, kept running as a warm echo');
}

/**
 * A shadow starts from a copy of a serving instance's state directory on its own host (a one-off
 * snapshot: it is not kept in sync, it sees the live traffic's mirror instead). A state directory is
 * its host's own: a shadow on another host than every serving instance starts empty.
 */
export async function seedShadowState(host: ServingSetHost, shadow: InstanceRecord): Promise<void> {
  const running = host
    .instancesOf(shadow.service)
    .filter((i) => i.role === 'primary' && i.phase === 'running')
    .sort((a, b) => a.slot - b.slot);
  const primary = running.find((i) => i.host === shadow.host);
  await host.agents
    .of(shadow)
    .snapshotState(primary ? { host: primary.host, stateDir: primary.stateDir } : undefined, shadow.stateDir);
}

/** Health checks in a row an unhealthy member may fail, in multiples of the failure threshold, before a restart. */
const BENCH_THRESHOLDS = 10;

/**
 * A member of a serving set of several that fails its health check leaves the set (its peers carry the
 * load) instead of being restarted at once — an overloaded instance killed for being slow only moves its
 * load onto the others (readiness, not liveness). It rejoins when healthy. Returns whether it was benched.
 */
export function benchUnhealthy(host: ServingSetHost, rec: InstanceRecord, why: string): boolean {
  if (rec.role !== 'primary') return false;
  const peers = host
    .instancesOf(rec.service)
    .filter((i) => i.role === 'primary' && i.id !== rec.id && i.phase === 'running');
  if (peers.length === 0) return false;
  refreshServing(host, rec.service, rec.id);
  host.decisions.record({
    kind: 'unready',
    service: rec.service,
    instance: rec.id,
    what: `take ${rec.id} out of the serving set until it is healthy again`,
    why: `${why}; ${peers.length} other serving instance(s) carry the load`,
    inputs: { peers: peers.map((p) => p.id) },
    outcome: { status: 'ok' },
  });
  return true;
}

/** Whether a benched member has stayed unhealthy long enough to be restarted. */
export function restartBenched(rec: InstanceRecord, verdict: HealthVerdict, spec: ServiceSpec): boolean {
  const threshold = spec.health?.failureThreshold ?? 3;
  return (
    rec.role === 'primary' &&
    rec.phase === 'unhealthy' &&
    !verdict.healthy &&
    verdict.consecutiveFailures === threshold * BENCH_THRESHOLDS
  );
}

/** A serving instance that joined after a process start: recorded with how long the cold start took. */
export function recordColdJoin(decisions: DecisionLog, rec: InstanceRecord): void {
  if (rec.role !== 'primary' || rec.startedAt === undefined) return;
  const ms = Date.now() - rec.startedAt;
  decisions.record({
    kind: 'serving',
    service: rec.service,
    instance: rec.id,
    what: `${rec.id} joins the serving set`,
    why: `ready ${ms} ms after its process started (a cold start)`,
    inputs: { coldStartMs: ms },
    outcome: { status: 'recorded' },
  });
}

/**
 * A serving-set member whose heartbeat went silent while its process runs (not stopped) is most often
 * overloaded, its event loop busy with queued requests: with a health check to bring it back, it leaves
 * the set (its queue drains) instead of being killed. A second hang verdict while out of the set, or a
 * stopped process (SIGSTOP), is a real hang. Returns whether it was benched (phase `unhealthy`).
 */
export function benchHung(
  host: ServingSetHost,
  rec: InstanceRecord,
  verdict: FailureVerdict,
  spec: ServiceSpec,
): boolean {
  if (!spec.health || rec.phase === 'unhealthy' || verdict.evidence.procState === 'T') return false;
  if (!benchUnhealthy(host, rec, verdict.detail)) return false;
  return moveInstance(host.decisions, rec, 'unhealthy');
}
