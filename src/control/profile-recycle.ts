import type { ServiceSpec } from '../config/index.js';
import { moveInstance } from './instance-transition.js';
import type { DesiredCounts } from './reconcile.js';
import type { InstanceRecord } from './records.js';
import { refreshServing, resizeForRole, type FeedListener, type ServingSetHost } from './serving-set.js';

/** Health-check intervals a fed instance must pass, on top of its ramp, before it counts as operational. */
const SETTLE_CHECKS = 2;
/** A feed not settled within this is forgotten (the instance failed, left the set, or was replaced), ms. */
const FEED_EXPIRY_MS = 10 * 60_000;

/** What recycling needs besides a {@link ServingSetHost}. */
export interface RecycleHost extends ServingSetHost {
  /** Stops an instance on purpose (out of the router and mirror first). */
  stopInstance(rec: InstanceRecord, phase: 'stopped' | 'failed'): Promise<void>;
}

/** One feed: `feeder` (a shadow) gave its runtime state to `target`, a new serving instance. */
interface Feed {
  feeder: string;
  target: string;
  service: string;
  at: number;
}

/**
 * How long a fed instance must be ready and serving before its feeder is recycled: its slow-start
 * ramp (`routing.slowStart`, when it joins others) plus two health-check intervals (one second each
 * without a health check).
 */
export function settleWindowMs(spec: ServiceSpec): number {
  return spec.routing.slowStart + SETTLE_CHECKS * (spec.health?.interval ?? 1000);
}

/** What is to become of a feeder. */
export type RecycleVerdict =
  | { action: 'recycle'; reason: string }
  | { action: 'terminate'; reason: string }
  | { action: 'keep'; reason: string };

/**
 * Seed 001's recycling, decided from the warm pool's target (the forecast's pool size, `desired.echoes`)
 * and the shadows wanted:
 * - the pool, counting only echoes that stood by before the feed (not a refill the reconciler began
 *   since), is below its target → the shadow is **recycled into the warm pool** (its caches are warm;
 *   a cold refill then becomes surplus and is stopped);
 * - else more shadows run than are wanted (a spike shadow whose spike is now served) → **terminated**;
 * - else it stays a shadow (the spec wants it).
 * A cold pool (`echo.mode: cold`) has no processes: a shadow is never recycled into it.
 */
export function recycleVerdict(
  spec: ServiceSpec,
  feeder: InstanceRecord,
  instances: readonly InstanceRecord[],
  desired: DesiredCounts,
  fedAt: number,
): RecycleVerdict {
  const live = instances.filter((i) => i.phase !== 'stopped' && i.phase !== 'failed' && i.id !== feeder.id);
  const before = live.filter((i) => i.role === 'echo' && (i.startedAt ?? 0) <= fedAt).length;
  const shadows = live.filter((i) => i.role === 'shadow').length + 1;
  if (spec.echo.mode !== 'cold' && before < desired.echoes)
    return {
      action: 'recycle',
      reason: `the warm pool's target is ${desired.echoes} echo(es) and ${before} stood by before the feed: the warm shadow takes the free place instead of a cold start`,
    };
  if (shadows > desired.shadows)
    return {
      action: 'terminate',
      reason: `the warm pool is at its target (${before} of ${desired.echoes}) and ${shadows} shadow(s) run where ${desired.shadows} are wanted`,
    };
  return {
    action: 'keep',
    reason: `the warm pool is at its target (${before} of ${desired.echoes}) and the service wants ${desired.shadows} shadow(s): it stays a shadow`,
  };
}

/**
 * Follows the shadows that fed new serving instances (their runtime state, see `transferRuntimeState`)
 * and, once such an instance has been ready and serving for {@link settleWindowMs}, recycles its
 * feeder into the warm pool, terminates it, or keeps it ({@link recycleVerdict}) — a `recycle`
 * decision with its reason.
 */
export class RecycleWatch implements FeedListener {
  readonly #feeds: Feed[] = [];
  /** When each fed target was first seen ready and serving. */
  readonly #servingSince = new Map<string, number>();

  /** `desired`: the desired counts of a service (the warm pool's forecast target is `echoes`). */
  constructor(
    private readonly host: RecycleHost,
    private readonly desired: (service: string) => DesiredCounts,
  ) {}

  /** Notes that `feeder` gave its state to `target` (bounded: one feed per target, the latest). */
  fed(feeder: InstanceRecord, target: InstanceRecord, at: number): void {
    if (feeder.role !== 'shadow') return;
    const i = this.#feeds.findIndex((f) => f.target === target.id);
    if (i >= 0) this.#feeds.splice(i, 1);
    this.#feeds.push({ feeder: feeder.id, target: target.id, service: target.service, at });
    this.#servingSince.delete(target.id);
  }

  /** Feeds not yet settled. */
  get pending(): number {
    return this.#feeds.length;
  }

  /** Settles every feed whose target has been operational long enough. */
  async tick(now: number): Promise<void> {
    for (const feed of [...this.#feeds]) {
      const mine = this.host.instancesOf(feed.service);
      const target = mine.find((i) => i.id === feed.target);
      const feeder = mine.find((i) => i.id === feed.feeder);
      const operational = target?.role === 'primary' && target.phase === 'running';
      if (!operational || !feeder || feeder.role !== 'shadow' || feeder.phase !== 'running') {
        this.#servingSince.delete(feed.target);
        if (!feeder || feeder.role !== 'shadow' || now - feed.at > FEED_EXPIRY_MS) this.#drop(feed);
        continue;
      }
      const since = this.#servingSince.get(feed.target) ?? now;
      this.#servingSince.set(feed.target, since);
      const spec = this.host.specOf(feed.service);
      if (now - since < settleWindowMs(spec)) continue;
      this.#drop(feed);
      await this.#settle(spec, feeder, feed, now - since);
    }
  }

  #drop(feed: Feed): void {
    const i = this.#feeds.indexOf(feed);
    if (i >= 0) this.#feeds.splice(i, 1);
    this.#servingSince.delete(feed.target);
  }

  async #settle(spec: ServiceSpec, feeder: InstanceRecord, feed: Feed, servingMs: number): Promise<void> {
    const host = this.host;
    const v = recycleVerdict(
      spec,
      feeder,
      host.instancesOf(feed.service),
      this.desired(feed.service),
      feed.at,
    );
    const what =
      v.action === 'recycle'
        ? `recycle shadow ${feeder.id} into the warm pool`
        : v.action === 'terminate'
          ? `terminate shadow ${feeder.id}`
          : `keep shadow ${feeder.id}`;
    const decision = host.decisions.record({
      kind: 'recycle',
      service: feed.service,
      instance: feeder.id,
      what,
      why: `${feed.target}, which it fed, has served for ${Math.round(servingMs)} ms (settle window ${settleWindowMs(spec)} ms); ${v.reason}`,
      inputs: { fed: feed.target, action: v.action, desired: this.desired(feed.service) },
      outcome: { status: v.action === 'keep' ? 'recorded' : 'pending' },
    });
    try {
      if (v.action === 'recycle') {
        if (!moveInstance(host.decisions, feeder, 'recycle')) {
          host.decisions.settle(
            decision,
            'failed',
            `${feeder.id} cannot be recycled from phase '${feeder.phase}'`,
          );
          return;
        }
        // Out of the mirror, at echo limits, its state directory kept in sync with the primary's.
        refreshServing(host, feed.service);
        await resizeForRole(host, feeder, spec);
        await host.save(feeder);
        await host.services.files(feed.service)?.addEcho(feeder.id, feeder.stateDir);
        host.decisions.settle(decision, 'ok', `${feeder.id} stands by in the warm pool (no cold start)`);
      } else if (v.action === 'terminate') {
        await host.stopInstance(feeder, 'stopped');
        host.decisions.settle(decision, 'ok', `${feeder.id} stopped`);
      }
    } catch (err) {
      host.decisions.settle(decision, 'failed', `${(err as Error).message}`);
    }
  }
}
