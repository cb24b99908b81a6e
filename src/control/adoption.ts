import type { ServiceSpec } from '../config/index.js';
import type { Failover, FailoverHost } from './failover.js';
import { moveInstance } from './instance-transition.js';
import type { InstancePhase, InstanceRecord } from './records.js';

/** What adoption needs from the control plane. */
export interface AdoptionHost extends FailoverHost {
  failover: Failover;
  records(): InstanceRecord[];
  specOrUndefined(name: string): ServiceSpec | undefined;
  watch(spec: ServiceSpec, rec: InstanceRecord): void;
  markRunning(rec: InstanceRecord): void;
  stopInstance(rec: InstanceRecord, phase: Extract<InstancePhase, 'stopped' | 'failed'>): Promise<void>;
}

/**
 * Instances started by an earlier control process of this data directory (which was killed) keep
 * running: adopt them instead of restarting them. The primary is routed to again; a hot echo whose
 * applied seq is still in the durable mutation log is resumed by replay from there (no snapshot);
 * otherwise it is kept only if its state equals the primary's, else rebuilt from a snapshot; warm and
 * cold echoes resume their file sync.
 */
export async function adoptSurvivors(host: AdoptionHost): Promise<void> {
  const adopted: InstanceRecord[] = [];
  for (const rec of host.records()) {
    if (['stopped', 'failed'].includes(rec.phase)) continue;
    const spec = host.specOrUndefined(rec.service);
    const ok =
      spec && rec.handle && rec.phase !== 'standby'
        ? await host.agents
            .of(rec)
            .adopt(rec.handle)
            .catch(() => false)
        : false;
    if (rec.phase === 'standby' && spec) {
      adopted.push(rec);
      continue;
    }
    if (!ok || !spec) {
      moveInstance(host.decisions, rec, 'stop');
      await host.save(rec);
      continue;
    }
    adopted.push(rec);
    host.decisions.record({
      kind: 'adopt',
      service: rec.service,
      instance: rec.id,
      what: `adopt ${rec.role} ${rec.id} (pid ${rec.pid})`,
      why: 'it was started by an earlier control process of this data directory and is still running',
      inputs: { pid: rec.pid, pgid: rec.pgid },
      outcome: { status: 'ok' },
    });
  }
  for (const rec of adopted.filter((r) => r.role !== 'echo')) {
    const spec = host.specOf(rec.service);
    if (!moveInstance(host.decisions, rec, 'adopt')) continue;
    host.watch(spec, rec);
    if (!spec.health) host.markRunning(rec);
    if (
      rec.role === 'primary' &&
      rec.slot ===
        Math.min(
          ...adopted.filter((p) => p.service === rec.service && p.role === 'primary').map((p) => p.slot),
        )
    )
      await host.services.files(rec.service)?.setPrimary(rec.stateDir);
  }
  for (const rec of adopted.filter((r) => r.role === 'echo')) {
    const spec = host.specOf(rec.service);
    const primary = adopted.find((p) => p.service === rec.service && p.role === 'primary');
    const files = host.services.files(rec.service);
    if (files) {
      await files.addEcho(rec.id, rec.stateDir);
      if (rec.phase !== 'standby') host.watch(spec, rec);
      continue;
    }
    const resumed = await resumeByReplay(host, spec, rec);
    if (resumed === true) continue;
    if (typeof resumed === 'string') {
      await rebuild(host, rec, resumed, {});
      continue;
    }
    // Both directories are on the echo's host in embedded mode; its agent compares them.
    const differences = primary
      ? await host.agents
          .of(rec)
          .compareState(primary.stateDir, rec.stateDir)
          .catch((err: unknown) => [{ path: '', kind: String(err) }])
      : [{ path: '', kind: 'no primary' }];
    const same = differences.length === 0;
    if (same && moveInstance(host.decisions, rec, 'adopt')) {
      host.watch(spec, rec);
      const plane = host.services.plane(rec.service);
      // Equal to the primary: it is where the log ends.
      if (await host.waitReady(rec, host.timeouts.echoReadyMs))
        plane?.addEcho(rec, plane.replication?.log.lastSeq ?? 0);
      continue;
    }
    await rebuild(
      host,
      rec,
      "its state differs from the primary's and it cannot be resumed from the mutation log",
      { differences: differences.slice(0, 10) },
    );
  }
}

async function rebuild(
  host: AdoptionHost,
  rec: InstanceRecord,
  why: string,
  inputs: Record<string, unknown>,
): Promise<void> {
  const decision = host.decisions.record({
    kind: 'restart',
    service: rec.service,
    instance: rec.id,
    what: `rebuild echo ${rec.id} from a snapshot of the primary`,
    why,
    inputs,
    outcome: { status: 'pending' },
  });
  await host.stopInstance(rec, 'stopped');
  await host.failover.provisionEcho(rec, decision);
}

/**
 * A hot echo of a service with a durable mutation log and an `appliedSeq` probe: asks it which mutation
 * it applied last and, when the log still holds the ones after it, resumes it by replay (a `replay`
 * decision; true). Returns why it must be rebuilt instead (a string), or undefined when the spec gives
 * no way to ask (then its state is compared with the primary's, as before the durable log).
 */
async function resumeByReplay(
  host: AdoptionHost,
  spec: ServiceSpec,
  rec: InstanceRecord,
): Promise<true | string | undefined> {
  const plane = host.services.plane(rec.service);
  const replication = plane?.replication;
  if (!plane || !replication?.log.durable || !spec.echo.mutations.appliedSeq) return undefined;
  // Pipelined order: the primary consumed seqs at arrival; those the log lost (its unwritten tail) must
  // not be handed out again, and an echo behind them is rebuilt (it cannot get them by replay).
  if (replication.order === 'pipelined') {
    const primary = host
      .records()
      .find(
        (p) => p.service === rec.service && p.role === 'primary' && !['stopped', 'failed'].includes(p.phase),
      );
    const seen = primary ? await plane.appliedSeqOf(primary) : { error: 'no primary runs' };
    if ('error' in seen) return `the primary's applied seq is unknown (${seen.error})`;
    if (seen.seq > replication.log.lastSeq) {
      const last = replication.log.lastSeq;
      await replication.skipTo(seen.seq);
      host.decisions.record({
        kind: 'mutation-log-recovered',
        service: rec.service,
        what: `continue the mutation log of ${rec.service} after seq ${seen.seq}`,
        why: `the primary consumed seqs up to ${seen.seq}, past the log's last durable seq ${last} (its unwritten tail died with the earlier control process)`,
        inputs: { primaryAppliedSeq: seen.seq, logLastSeq: last },
        outcome: { status: 'recorded' },
      });
    }
  }
  if (!(await host.waitReady(rec, host.timeouts.echoReadyMs)))
    return `it did not become ready within ${host.timeouts.echoReadyMs} ms`;
  const applied = await plane.appliedSeqOf(rec);
  if ('error' in applied) return `it did not say which mutation it applied last (${applied.error})`;
  const verdict = await replication.replayVerdict(applied.seq);
  if (!verdict.replay) return verdict.why;
  if (!moveInstance(host.decisions, rec, 'adopt')) return `it cannot be adopted from phase '${rec.phase}'`;
  host.decisions.record({
    kind: 'replay',
    service: rec.service,
    instance: rec.id,
    what: `resume hot echo ${rec.id} by replaying the mutation log after seq ${verdict.fromSeq} (no snapshot)`,
    why: verdict.why,
    inputs: {
      appliedSeq: applied.seq,
      logFirstKeptSeq: replication.log.firstKeptSeq,
      logLastSeq: replication.log.lastSeq,
    },
    outcome: { status: 'ok' },
  });
  host.watch(spec, rec);
  plane.addEcho(rec, verdict.fromSeq);
  return true;
}
