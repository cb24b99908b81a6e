import type { ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { PromotionObserver } from '../telemetry/index.js';
import { crashPoint } from './crash-points.js';
import { ExternalEchoes, type ExternalCatchUp } from './external-echo.js';
import { provisionExternalEcho } from './external-provision.js';
import {
  PROMOTION_PREFIX,
  type FailoverCause,
  type FailoverHost,
  type FailoverRecord,
} from './failover-host.js';
import { moveInstance } from './instance-transition.js';
import type { ControlDecision, InstanceRecord, PromotionIntent } from './records.js';
import { resizeForRole } from './serving-set.js';

/** What a promotion works with: the failover's instances, its external echoes, telemetry and records. */
export interface PromotionContext {
  readonly host: FailoverHost;
  /** The hooks and lag readings of external echoes (`echo.mode: external`). */
  readonly external: ExternalEchoes;
  /** Where the promotion and its durations are reported. */
  readonly telemetry: PromotionObserver;
  /** The last failover or switchover of each service: a promotion that succeeds records itself here. */
  readonly last: Map<string, FailoverRecord>;
}

/** One promotion: `target` (an echo) takes the place of `old` (the primary, if any) in `service`. */
export interface Promotion {
  service: string;
  old: InstanceRecord | undefined;
  target: InstanceRecord;
  /** The failover or switchover decision, settled here with the outcome. */
  decision: ControlDecision;
  kind: 'failover' | 'switchover';
  cause: FailoverCause;
}

/**
 * Carries out one promotion, the caller holding the service's work queue: for a switchover, pause new
 * mutations and wait until the target has caught up; write the promotion intent, bump the epoch by
 * compare-and-set, fence the old primary, switch the router and file sync to the target, demote or fence
 * the old primary, delete the intent, and record the timings. Settles the decision either way.
 * Thrown: UNDERSTUDY_ERR_FAILOVER when the target cannot take over (not caught up, epoch moved, not
 * ready, a failing hook); the intent is removed again.
 */
export async function promoteNow(ctx: PromotionContext, p: Promotion): Promise<void> {
  const { host, external, telemetry, last } = ctx;
  const { service, old, target, decision, kind, cause } = p;
  const spec = host.specOf(service);
  const plane = host.services.plane(service);
  const timeouts = host.timeouts;
  const started = cause.detectedAt;
  const observed = { service, kind, cause: cause.kind };
  let paused = false;
  let intentWritten = false;
  try {
    if (kind === 'switchover' && plane) {
      // Routers in other processes hold mutations too: they follow the routing record's pause.
      paused = true;
      await plane.pauseForSwitchover(
        await host.store.epoch(service),
        `switchover of ${service} to ${target.id}`,
        host.clock,
      );
      const catchUpMs = spec.echo.mutations.timeout * timeouts.switchoverMutationsFactor;
      if (plane.replication && !(await plane.replication.waitCaughtUp(target.id, catchUpMs))) {
        throw new UnderstudyError(
          ErrorCode.Failover,
          `echo ${target.id} did not catch up within ${catchUpMs} ms`,
        );
      }
    }
    const files = host.services.files(service);
    if (
      kind === 'switchover' &&
      files &&
      !(await files.waitCaughtUp(target.id, timeouts.switchoverFilesMs))
    ) {
      throw new UnderstudyError(
        ErrorCode.Failover,
        `the files of echo ${target.id} did not catch up within ${timeouts.switchoverFilesMs / 1000} s`,
      );
    }
    const epoch = await host.store.epoch(service);
    // The intent goes into the store before the epoch moves: a control process killed from here until
    // every role is saved leaves it behind, and the next one rolls the promotion forward or back.
    const intent: PromotionIntent = {
      service,
      kind,
      ...(old ? { from: old.id } : {}),
      to: target.id,
      toSlot: target.slot,
      epoch,
      next: epoch + 1,
      at: host.clock.now(),
      decision: decision.seq,
    };
    await host.store.put(PROMOTION_PREFIX + service, JSON.stringify(intent));
    intentWritten = true;
    crashPoint('before-epoch-cas');
    const next = await host.store.bumpEpoch(service, epoch);
    if (next === undefined)
      throw new UnderstudyError(
        ErrorCode.Failover,
        `the epoch of '${service}' moved under this promotion (another control plane?)`,
      );
    crashPoint('after-epoch-cas');
    // Fence first: the deposed primary must not serve once the new one does. Raising the router's epoch
    // cuts its connections; new requests wait (briefly) for the new primary.
    let fenceHook: string | undefined;
    if (old && kind === 'failover') {
      host.expectExit(old.id);
      if (cause.kind === 'host') {
        // Its host is unreachable: fencing through its agent would only wait for a timeout. Its agent
        // fences it by itself (self-fencing, before its lease can lapse) and, under write-through,
        // its echo refuses its old epoch meanwhile. Tried anyway, not awaited, for a host that answers.
        void Promise.resolve()
          .then(() => host.agents.of(old).fence(old.id))
          .catch(() => undefined);
      } else await host.agents.of(old).fence(old.id);
      if (spec.echo.mode === 'external' && cause.kind === 'host') {
        // Its `fence` hook runs on that host, through its agent: a connect that times out (5 s) would
        // hold the promotion. The agent has self-fenced by now (control waited for its deadline).
        fenceHook = 'not awaited: its host is unreachable (its agent self-fences)';
        void external.fence(spec, old, target, next).catch(() => undefined);
      } else if (spec.echo.mode === 'external') fenceHook = await external.fence(spec, old, target, next);
    }
    plane?.router.setEpoch(next);
    // A planned switchover of an external echo, as Patroni's: the old primary takes no more writes (the
    // router has just cut it), the service's own replication catches the echo up, and it is promoted only
    // once its lag hook reads 0 bytes behind — everything the old primary acknowledged is on it, even
    // with asynchronous replication. Not caught up in time: the old primary serves again, nothing moved.
    let catchUp: ExternalCatchUp | undefined;
    if (kind === 'switchover' && old && spec.echo.mode === 'external') {
      catchUp = await external.catchUp(spec, target, old, timeouts.switchoverExternalMs);
      if (!catchUp.caughtUp) {
        old.epoch = next;
        await host.save(old);
        plane?.setPrimary(old, next);
        decision.inputs = { ...decision.inputs, externalCatchUp: catchUpInputs(catchUp) };
        throw new UnderstudyError(
          ErrorCode.Failover,
          `echo ${target.id} did not catch up within ${timeouts.switchoverExternalMs / 1000} s ` +
            `(last lag ${catchUp.lagBytes ?? 'unknown'} bytes${catchUp.error ? `: ${catchUp.error}` : ''}); ` +
            `${old.id} serves again at epoch ${next}`,
          { details: { instance: target.id, ...catchUpInputs(catchUp) } },
        );
      }
    }
    // The router's mutation log is a third copy: let the echo apply what it still lacks from it.
    if (plane?.replication) await plane.replication.waitCaughtUp(target.id, spec.echo.mutations.timeout);
    const atRisk = plane?.replication?.atRisk(target.id) ?? [];
    await plane?.removeEcho(target.id);
    // Nothing more is written into the target's state directory: it is about to serve from it.
    const fileLag = files?.echoes().find((e) => e.echo === target.id);
    const externalLag =
      spec.echo.mode !== 'external'
        ? undefined
        : catchUp?.caughtUp && !catchUp.noLagHook
          ? 0
          : external.lagBytes(target.id);
    await files?.removeEcho(target.id);
    const echoSlot = target.slot;
    if (!moveInstance(host.decisions, target, 'promote'))
      throw new UnderstudyError(
        ErrorCode.Failover,
        `${target.id} cannot be promoted from phase '${target.phase}'`,
      );
    target.slot = 0;
    target.epoch = next;
    if (spec.echo.mode === 'cold' && target.phase === 'standby') {
      const start = host.decisions.record({
        kind: 'start',
        service,
        instance: target.id,
        what: `start cold echo ${target.id} to promote it`,
        why: decision.why,
        inputs: {},
        outcome: { status: 'pending' },
      });
      await host.launch(target, start);
    } else if (spec.echo.mode === 'warm' && spec.echo.promote) {
      await runPromotionHook(host, target, spec);
    } else if (spec.echo.mode === 'external') {
      await external.promote(spec, target, old, next);
    }
    if (spec.echo.mode === 'cold' && !(await host.waitReady(target, timeouts.coldPromotionReadyMs))) {
      throw new UnderstudyError(
        ErrorCode.Failover,
        `cold echo ${target.id} did not become ready within ${timeouts.coldPromotionReadyMs / 1000} s`,
      );
    }
    // A promoted echo serves with the full serving limits at once (it may have been sized down).
    await resizeForRole(host, target, spec);
    plane?.setPrimary(target, next);
    const promotedAt = host.clock.now();
    await files?.setPrimary(target.stateDir);
    await host.save(target);
    if (old) {
      moveInstance(host.decisions, old, kind === 'failover' ? 'fence' : 'demote');
      old.slot = echoSlot;
      await host.save(old);
      if (kind === 'switchover') {
        plane?.addEcho(old, plane.replication?.log.lastSeq ?? 0);
        if (spec.echo.mode === 'cold') {
          host.expectExit(old.id);
          await host.agents.of(old).stop(old.id, { graceMs: spec.stopGrace });
          moveInstance(host.decisions, old, 'standby');
          delete old.pid;
          delete old.health;
        }
        await files?.addEcho(old.id, old.stateDir);
        await host.save(old);
        if (spec.echo.mode === 'external') await rejoinExternal(ctx, spec, old, target);
      }
    }
    // Every role is saved: nothing is left to roll forward.
    await host.store.delete(PROMOTION_PREFIX + service);
    intentWritten = false;
    const record: FailoverRecord = {
      kind,
      at: promotedAt,
      from: old?.id ?? '',
      to: target.id,
      epoch: next,
      cause: `${cause.kind}: ${cause.detail}`,
      ...(cause.failedAt !== undefined
        ? { detectionMs: Math.max(0, cause.detectedAt - cause.failedAt) }
        : {}),
      promotionMs: promotedAt - started,
      atRisk,
      ...(kind === 'switchover' ? { restoredAt: promotedAt } : {}),
    };
    last.set(service, record);
    telemetry.promotion({
      ...observed,
      outcome: 'ok',
      promotionSeconds: record.promotionMs / 1000,
      ...(record.detectionMs !== undefined ? { detectionSeconds: record.detectionMs / 1000 } : {}),
    });
    decision.inputs = {
      ...decision.inputs,
      from: old?.id,
      to: target.id,
      epoch: next,
      atRisk,
      ...(fileLag ? { fileSyncLag: { seconds: fileLag.lagSeconds, bytes: fileLag.lagBytes } } : {}),
      ...(fenceHook !== undefined ? { fenceHook } : {}),
      ...(externalLag !== undefined ? { externalLagBytes: externalLag } : {}),
      ...(catchUp ? { externalCatchUp: catchUpInputs(catchUp) } : {}),
      timings: { detectionMs: record.detectionMs, promotionMs: record.promotionMs },
    };
    host.decisions.settle(
      decision,
      'ok',
      `${target.id} serves at epoch ${next} after ${record.promotionMs} ms; ${
        fileLag
          ? `file sync lag at promotion ${fileLag.lagSeconds.toFixed(3)} s / ${fileLag.lagBytes} bytes`
          : externalLag !== undefined
            ? catchUp && !catchUp.noLagHook
              ? `the old primary stopped taking writes, then the echo caught up ${catchUp.firstLagBytes ?? 'unknown'} bytes of lag in ${catchUp.waitedMs} ms: promoted at 0 bytes behind`
              : `replication lag at promotion ${externalLag} bytes (the service's own replication)`
            : atRisk.length
              ? `${atRisk.length} acknowledged mutation(s) at risk: ${atRisk.slice(0, 10).join(', ')}`
              : 'nothing acknowledged lost'
      }`,
    );
  } catch (err) {
    // This process handles the failure itself (the caller steps the echo back or tries the next one).
    if (intentWritten) await host.store.delete(PROMOTION_PREFIX + service).catch(() => undefined);
    host.decisions.settle(decision, 'failed', `${(err as Error).message}`);
    telemetry.promotion({ ...observed, outcome: 'failed' });
    throw err;
  } finally {
    if (paused) await plane?.resumeAfterSwitchover().catch(() => plane.router.resume());
  }
}

/**
 * The deposed primary of a switchover rejoins as an external echo of `target`. When the spec declares a
 * `prepare` hook, an echo's copy is made before it starts (PostgreSQL: pg_rewind onto the new
 * timeline, then it starts as a standby), so the old primary is stopped and provisioned again as a
 * rejoining echo; otherwise its `rejoin` (or `follow`) hook turns it into a follower as it runs (Redis:
 * REPLICAOF). Never throws: a failure is recorded and leaves the echo not in sync.
 */
async function rejoinExternal(
  ctx: PromotionContext,
  spec: ServiceSpec,
  old: InstanceRecord,
  target: InstanceRecord,
): Promise<void> {
  const { host, external } = ctx;
  if (!ExternalEchoes.hookOf(spec, 'prepare')) {
    await external.follow(spec, old, target, true);
    return;
  }
  const decision = host.decisions.record({
    kind: 'start',
    service: spec.name,
    instance: old.id,
    what: `restart ${old.id} as an echo of ${target.id} (prepare hook, rejoin)`,
    why: 'the deposed primary of a switchover rejoins; its copy is prepared before it starts',
    inputs: { primary: target.id },
    outcome: { status: 'pending' },
  });
  try {
    host.expectExit(old.id);
    await host.agents.of(old).stop(old.id, { graceMs: spec.stopGrace });
    moveInstance(host.decisions, old, 'stop');
    delete old.pid;
    delete old.health;
    await host.save(old);
    external.forget(old.id);
    if (await provisionExternalEcho(host, external, { spec, rec: old, decision, rejoin: true })) return;
    external.markUnsynced(old.id, `${old.id} did not rejoin (see its start decision)`);
  } catch (err) {
    external.markUnsynced(old.id, (err as Error).message);
    if (decision.outcome.status === 'pending')
      host.decisions.settle(decision, 'failed', (err as Error).message);
  }
}

/** What a decision records of a switchover's wait for an external echo: the lag it waited for, and how long. */
function catchUpInputs(c: ExternalCatchUp): Record<string, unknown> {
  return {
    lagBytesAtCut: c.firstLagBytes ?? null,
    lagBytes: c.lagBytes ?? null,
    waitedMs: c.waitedMs,
    readings: c.readings,
    ...(c.error ? { error: c.error } : {}),
    ...(c.noLagHook ? { noLagHook: true } : {}),
  };
}

/**
 * Tells a promoted warm echo that it is the primary now (the spec's `echo.promote` hook).
 * Thrown: UNDERSTUDY_ERR_FAILOVER when the HTTP hook does not answer or answers an error.
 */
export async function runPromotionHook(
  host: FailoverHost,
  target: InstanceRecord,
  spec: ServiceSpec,
): Promise<void> {
  const hook = spec.echo.promote;
  if (!hook?.signal && !hook?.http) return;
  const agent = host.agents.of(target);
  if (hook.signal) await agent.runHook(target.id, { signal: hook.signal }, host.timeouts.promotionHookMs);
  if (hook.http) {
    const path = hook.http;
    const port = host.services.plane(spec.name)?.portOf(target) ?? Object.values(target.ports)[0] ?? 0;
    const status = await agent
      .runHook(target.id, { http: { port, path } }, host.timeouts.promotionHookMs)
      .catch((err: unknown) => {
        throw new UnderstudyError(
          ErrorCode.Failover,
          `promotion hook ${path} of ${target.id} did not answer: ${(err as Error).message}`,
          { cause: err },
        );
      });
    if (status === undefined || status < 200 || status > 299)
      throw new UnderstudyError(
        ErrorCode.Failover,
        `promotion hook ${path} of ${target.id} answered HTTP ${status}`,
      );
  }
}
