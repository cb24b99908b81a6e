import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { AdoptionHost } from './adoption.js';
import { PROMOTION_PREFIX } from './failover.js';
import { moveInstance } from './instance-transition.js';
import type { ControlDecision, InstanceRecord, PromotionIntent } from './records.js';
import { resizeForRole } from './serving-set.js';

const GONE = new Set(['stopped', 'failed', 'standby']);

/** What a recovering control process knows about an interrupted promotion. */
export interface RecoveryFacts {
  serviceKnown: boolean;
  /** The service's epoch in the store now. */
  epoch: number;
  /** The epoch the promotion expected, and the one it was setting. */
  intentEpoch: number;
  intentNext: number;
  /** The old primary still runs. */
  fromRuns: boolean;
  /** The echo being promoted runs, or is a cold standby that can be started. */
  toUsable: boolean;
  /** Another echo of the service runs (asked only when neither of the two can serve). */
  otherEchoRuns: boolean;
}

/** What to do about an interrupted promotion. */
export type RecoveryPlan =
  | { action: 'drop'; reason: 'service-gone' | 'epoch-moved' }
  | { action: 'nothing-changed' }
  | { action: 'promote'; who: 'to' | 'from' | 'other'; bumpEpoch: boolean }
  | { action: 'none-runs' };

/**
 * The transition table of promotion recovery, as a pure function: a promotion whose epoch never moved
 * and whose old primary still runs changed nothing; otherwise the first that can serve of the promoted
 * echo, the old primary and another echo becomes the primary at the new epoch (bumped now if the crash
 * came before the compare-and-set). An intent whose service is gone or whose epoch was moved further by
 * someone else is stale.
 */
export function planRecovery(f: RecoveryFacts): RecoveryPlan {
  if (!f.serviceKnown) return { action: 'drop', reason: 'service-gone' };
  if (f.epoch !== f.intentEpoch && f.epoch !== f.intentNext) return { action: 'drop', reason: 'epoch-moved' };
  const bumpEpoch = f.epoch === f.intentEpoch;
  if (bumpEpoch && f.fromRuns) return { action: 'nothing-changed' };
  if (f.toUsable) return { action: 'promote', who: 'to', bumpEpoch };
  if (f.fromRuns) return { action: 'promote', who: 'from', bumpEpoch };
  if (f.otherEchoRuns) return { action: 'promote', who: 'other', bumpEpoch };
  return { action: 'none-runs' };
}

/**
 * A control process killed mid-promotion leaves its promotion intent in the store (written before the
 * epoch compare-and-set, removed once every role is saved). Before survivors are adopted, each intent
 * found is finished one way or the other, level-triggered from what actually runs, and recorded as a
 * `promotion-recovery` decision that says what was found and what was done:
 *
 * - the epoch never moved and the old primary still runs: rolled back — nothing had changed;
 * - else the promoted echo, if it still runs (or is a cold standby, which is started), becomes the
 *   primary at the new epoch (rolled forward; the epoch is bumped now if the crash came before it);
 * - else the old primary, if it still runs, serves again under the new epoch (rolled back);
 * - else another running echo of the service is promoted;
 * - else nothing runs: the decision says so, and the reconciler starts a new primary.
 *
 * Whichever of the two does not serve is fenced (killed) and left `stopped`; the reconciler provisions
 * a replacement echo from the new primary. The promotion's own decision, left `pending`, is settled.
 */
export async function recoverPromotions(host: AdoptionHost): Promise<void> {
  for (const entry of await host.store.list(PROMOTION_PREFIX)) {
    const intent = JSON.parse(entry.value) as PromotionIntent;
    try {
      await recoverOne(host, intent);
    } catch (err) {
      host.decisions.record({
        kind: 'promotion-recovery',
        service: intent.service,
        what: `finish the interrupted ${intent.kind} of '${intent.service}'`,
        why: 'the control process stopped during it',
        inputs: { intent },
        outcome: { status: 'failed', detail: (err as Error).message },
      });
    }
  }
}

async function recoverOne(host: AdoptionHost, intent: PromotionIntent): Promise<void> {
  const { service } = intent;
  const key = PROMOTION_PREFIX + service;
  const spec = host.specOrUndefined(service);
  const epoch = await host.store.epoch(service);
  const mine = host.records().filter((r) => r.service === service);
  const from = mine.find((r) => r.id === intent.from);
  const to = mine.find((r) => r.id === intent.to);
  const runs = async (rec: InstanceRecord | undefined): Promise<boolean> =>
    !!rec?.handle &&
    !GONE.has(rec.phase) &&
    (await host.agents
      .of(rec)
      .adopt(rec.handle)
      .catch(() => false));
  const fromRuns = await runs(from);
  const toRuns = await runs(to);
  const toStandby = to?.phase === 'standby' && spec?.echo.mode === 'cold';
  const casDone = epoch === intent.next;
  const found = {
    epoch,
    epochMoved: casDone,
    from: intent.from === undefined ? undefined : { id: intent.from, running: fromRuns },
    to: { id: intent.to, running: toRuns, standby: toStandby },
  };
  const why =
    `the control process stopped during a ${intent.kind} of '${service}' from ${intent.from ?? '(no primary)'} ` +
    `to ${intent.to} begun at ${new Date(intent.at).toISOString()}, ${casDone ? 'after' : 'before'} the ` +
    `epoch moved to ${intent.next}; ${intent.from ?? '(no primary)'} ${fromRuns ? 'runs' : 'is gone'}, ` +
    `${intent.to} ${toRuns ? 'runs' : toStandby ? 'is a cold standby' : 'is gone'}`;
  const record = (what: string, status: 'ok' | 'failed', detail: string): ControlDecision =>
    host.decisions.record({
      kind: 'promotion-recovery',
      service,
      ...(intent.from !== undefined ? { instance: intent.from } : {}),
      what,
      why,
      inputs: { intent, found },
      outcome: { status, detail },
    });

  let other: InstanceRecord | undefined;
  if (!(toRuns || toStandby) && !fromRuns) {
    for (const r of mine.filter((i) => i.role === 'echo' && i !== to))
      if (await runs(r)) {
        other = r;
        break;
      }
  }
  const plan = planRecovery({
    serviceKnown: spec !== undefined,
    epoch,
    intentEpoch: intent.epoch,
    intentNext: intent.next,
    fromRuns,
    toUsable: toRuns || toStandby,
    otherEchoRuns: other !== undefined,
  });
  if (plan.action === 'drop' || plan.action === 'nothing-changed') {
    await host.store.delete(key);
    const d =
      plan.action === 'nothing-changed'
        ? record(
            `roll back the interrupted ${intent.kind}: ${intent.from} stays the primary`,
            'ok',
            'nothing had changed (the epoch had not moved)',
          )
        : record(
            `drop the promotion intent of '${service}'`,
            'ok',
            plan.reason === 'service-gone'
              ? 'the service is no longer in the spec'
              : `the epoch is ${epoch}, moved by a later promotion`,
          );
    await settleOriginal(host, intent, d);
    return;
  }
  const promoted = plan.action === 'promote' ? { to, from, other }[plan.who] : undefined;
  // Whichever of the two does not serve must not serve under the new epoch: fenced and left stopped.
  const fenced: string[] = [];
  for (const r of [from, to]) {
    if (!r || r === promoted) continue;
    if (r === from ? fromRuns : toRuns) {
      host.expectExit(r.id);
      await host.agents
        .of(r)
        .stop(r.id, { graceMs: 0 })
        .catch(() => undefined);
      fenced.push(r.id);
    }
    moveInstance(host.decisions, r, 'step-down');
    if (r === from && promoted === to) r.slot = intent.toSlot;
    if (r === to && promoted !== to) r.slot = intent.toSlot;
    delete r.pid;
    delete r.health;
    await host.save(r);
  }
  if (!promoted || !spec) {
    await host.store.delete(key);
    const d = record(
      `no instance of '${service}' can serve after the interrupted ${intent.kind}`,
      'failed',
      'neither instance of the promotion nor any other echo runs; the reconciler starts a new primary',
    );
    await settleOriginal(host, intent, d);
    return;
  }

  let next = epoch;
  if (plan.action === 'promote' && plan.bumpEpoch) {
    const bumped = await host.store.bumpEpoch(service, epoch);
    if (bumped === undefined)
      throw new UnderstudyError(ErrorCode.Failover, `the epoch of '${service}' moved during recovery`);
    next = bumped;
  }
  const alreadyPrimary = promoted.role === 'primary' && promoted.epoch === next;
  if (!moveInstance(host.decisions, promoted, 'promote'))
    throw new UnderstudyError(
      ErrorCode.Failover,
      `${promoted.id} cannot be promoted from phase '${promoted.phase}'`,
    );
  promoted.slot = from?.slot ?? 0;
  promoted.epoch = next;
  const notes: string[] = [];
  if (promoted === to && toStandby) {
    const start = host.decisions.record({
      kind: 'start',
      service,
      instance: promoted.id,
      what: `start cold echo ${promoted.id} to finish its promotion`,
      why,
      inputs: {},
      outcome: { status: 'pending' },
    });
    await host.launch(promoted, start);
  } else if (promoted !== from && !alreadyPrimary && spec.echo.mode === 'warm' && spec.echo.promote) {
    await host.failover.promotionHook(promoted, spec).catch((err: unknown) => {
      notes.push(`promotion hook failed: ${(err as Error).message}`);
    });
  } else if (promoted !== from && !alreadyPrimary && spec.echo.mode === 'external') {
    // The promote hook is idempotent by contract (docs/recipes.md): it may have run before the crash.
    await host.failover.external.promote(spec, promoted, from, next).catch((err: unknown) => {
      notes.push(`promote hook failed: ${(err as Error).message}`);
    });
  }
  // The promoted echo serves with the full serving limits (it may have been sized down).
  await resizeForRole(host, promoted, spec);
  await host.save(promoted);
  await host.store.delete(key);
  const how =
    promoted === to
      ? `roll forward the interrupted ${intent.kind} of '${service}': ${promoted.id} serves at epoch ${next}`
      : promoted === from
        ? `roll back the interrupted ${intent.kind} of '${service}': ${promoted.id} serves again, at epoch ${next}`
        : `promote ${promoted.id} in place of ${intent.from ?? '(no primary)'} and ${intent.to}, neither of which runs; it serves at epoch ${next}`;
  const d = record(
    how,
    'ok',
    `${promoted.id} is the primary at epoch ${next}${fenced.length > 0 ? `; fenced ${fenced.join(', ')}` : ''}${
      notes.length > 0 ? `; ${notes.join('; ')}` : ''
    }; the reconciler restores the echoes`,
  );
  await settleOriginal(host, intent, d);
}

/** The promotion's own decision was left pending by the killed process: it says now what became of it. */
async function settleOriginal(
  host: AdoptionHost,
  intent: PromotionIntent,
  recovery: ControlDecision,
): Promise<void> {
  const [original] = (await host.decisions.list({ after: intent.decision - 1 })).filter(
    (d) => d.seq === intent.decision,
  );
  if (original?.outcome.status === 'pending')
    host.decisions.settle(
      original,
      'failed',
      `the control process stopped during it; finished by decision ${recovery.seq} (${recovery.what})`,
    );
}
