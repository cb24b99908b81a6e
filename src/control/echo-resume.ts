import { moveInstance } from './instance-transition.js';
import type { ControlDecision, InstanceRecord } from './records.js';
import type { ServingSetHost } from './serving-set.js';

/** What resuming an echo needs (a subset of the failover's host). */
export interface EchoResumeHost extends ServingSetHost {
  /** Marks an instance as stopped on purpose: its exit is not a failure. */
  expectExit(id: string): void;
  /** Starts (or restarts) an instance process for a record; settles the decision. */
  launch(rec: InstanceRecord, decision: ControlDecision): Promise<void>;
  /** Resolves once the instance answers (health check or port), or false on timeout. */
  waitReady(rec: InstanceRecord, timeoutMs: number): Promise<boolean>;
}

/**
 * A hot echo that exited and is started again keeps its state directory. When the service has a durable
 * mutation log and an `appliedSeq` probe, and the instance was an echo of this control process (never
 * a primary since: its state holds only replayed mutations), it is started on its own state and asked
 * which mutation it applied last; when the log still holds the ones after it, it is resumed by replay —
 * a `replay` decision, no snapshot (resolves true). Otherwise it is stopped again and a `restart`
 * decision saying why is returned, for the caller to rebuild it from a snapshot; undefined when the
 * conditions do not hold (nothing was done).
 */
export async function resumeEchoByReplay(
  host: EchoResumeHost,
  rec: InstanceRecord,
  decision: ControlDecision,
): Promise<true | ControlDecision | undefined> {
  const spec = host.specOf(rec.service);
  const plane = host.services.plane(rec.service);
  const replication = plane?.replication;
  if (!plane || !replication?.log.durable || !spec.echo.mutations.appliedSeq || !replication.wasEcho(rec.id))
    return undefined;
  await host.launch(rec, decision);
  if (rec.phase === 'failed') return true;
  const ready = await host.waitReady(rec, host.timeouts.echoReadyMs);
  const applied = ready
    ? await plane.appliedSeqOf(rec)
    : { error: `it did not become ready within ${host.timeouts.echoReadyMs} ms` };
  const verdict =
    'seq' in applied && applied.seq > 0 ? await replication.replayVerdict(applied.seq) : undefined;
  if (verdict?.replay && 'seq' in applied) {
    host.decisions.record({
      kind: 'replay',
      service: rec.service,
      instance: rec.id,
      what: `resume hot echo ${rec.id} by replaying the mutation log after seq ${verdict.fromSeq} (no snapshot)`,
      why: `it restarted on its own state; ${verdict.why}`,
      inputs: {
        appliedSeq: applied.seq,
        logFirstKeptSeq: replication.log.firstKeptSeq,
        logLastSeq: replication.log.lastSeq,
      },
      outcome: { status: 'ok' },
    });
    plane.addEcho(rec, verdict.fromSeq);
    return true;
  }
  const why =
    verdict?.why ?? ('error' in applied ? applied.error : 'it reports no applied mutation (a fresh state)');
  const rebuild = host.decisions.record({
    kind: 'restart',
    service: rec.service,
    instance: rec.id,
    what: `rebuild echo ${rec.id} from a snapshot of the primary`,
    why: `it cannot be resumed by replay: ${why}`,
    inputs: 'seq' in applied ? { appliedSeq: applied.seq } : {},
    outcome: { status: 'pending' },
  });
  host.expectExit(rec.id);
  await host.agents
    .of(rec)
    .stop(rec.id, { graceMs: spec.stopGrace })
    .catch(() => undefined);
  moveInstance(host.decisions, rec, 'stop');
  await host.save(rec);
  return rebuild;
}
