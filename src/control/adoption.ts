import type { ServiceSpec } from '../config/index.js';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import type { Failover, FailoverHost } from './failover.js';
import { moveInstance } from './instance-transition.js';
import type { PendingFailover } from './maintenance.js';
import type { InstancePhase, InstanceRecord } from './records.js';

/** What adoption needs from the control plane. */
export interface AdoptionHost extends FailoverHost {
  failover: Failover;
  records(): InstanceRecord[];
  specOrUndefined(name: string): ServiceSpec | undefined;
  watch(spec: ServiceSpec, rec: InstanceRecord): void;
  markRunning(rec: InstanceRecord): void;
  stopInstance(rec: InstanceRecord, phase: Extract<InstancePhase, 'stopped' | 'failed'>): Promise<void>;
  /** Begins the failover of a primary that is down (not running); false when none can begin. */
  resumeFailover(pending: PendingFailover): boolean;
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
  /** Per host: when its agent was first found unreachable in this pass (its retries share one budget). */
  const unreachableSince = new Map<string, number>();
  /** Primaries found gone: failed over once the echoes are adopted. */
  const lost: InstanceRecord[] = [];
  for (const rec of host.records()) {
    if (['stopped', 'failed'].includes(rec.phase)) continue;
    const spec = host.specOrUndefined(rec.service);
    let failure = !spec
      ? 'its service is no longer in the spec'
      : !rec.handle
        ? 'its record has no process handle'
        : '';
    const ok =
      spec && rec.handle && rec.phase !== 'standby'
        ? await adoptOnce(host, rec, rec.handle, unreachableSince).catch((err: unknown) => {
            failure = `its agent could not be asked: ${(err as Error).message}`;
            return false;
          })
        : false;
    if (rec.phase === 'standby' && spec) {
      adopted.push(rec);
      continue;
    }
    if (!ok || !spec) {
      // A primary its agent says is gone died while no control process was acting (e.g. between two
      // leaders): it is failed over like a crash once the echoes are adopted, not replaced by a new,
      // empty primary. Only when no failover can begin is its record marked stopped.
      const gone = spec !== undefined && failure === '' && rec.role === 'primary';
      host.decisions.record({
        kind: 'adopt',
        service: rec.service,
        instance: rec.id,
        what: gone
          ? `not adopted: primary ${rec.id} (pid ${rec.pid}) is gone; fail over to an echo`
          : `give up ${rec.role} ${rec.id} (pid ${rec.pid}): not adopted, its record is marked stopped`,
        why: failure || 'its agent does not run that process any more (it exited, or it is another process)',
        inputs: { pid: rec.pid, host: rec.host },
        outcome: { status: gone ? 'recorded' : 'failed' },
      });
      if (gone && moveInstance(host.decisions, rec, 'exit')) {
        lost.push(rec);
        continue;
      }
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
    if (lost.some((p) => p.service === rec.service)) {
      // Its primary is gone: this echo is the copy the failover promotes, kept as it is.
      if (moveInstance(host.decisions, rec, 'adopt')) host.watch(spec, rec);
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
  for (const rec of lost) {
    const cause = {
      kind: 'crash' as const,
      detail: `primary ${rec.id} was found gone when this control process adopted the instances (it died while no control process was acting)`,
      evidence: { pid: rec.pid ?? null, host: rec.host },
      detectedAt: host.clock.now(),
    };
    if (host.resumeFailover({ instance: rec.id, cause, decision: 0 })) continue;
    moveInstance(host.decisions, rec, 'stop');
    await host.save(rec);
  }
}

/**
 * Asks the instance's agent to adopt it. An agent that cannot be reached (it is restarting, or the
 * registry is replacing its client) is asked again, through the registry's current client for the host,
 * until `adoptUnreachableMs` has passed for that host; then the error is thrown. Unreachable is not
 * evidence that the process is gone: only an agent that answers "not running" (false) is believed.
 */
async function adoptOnce(
  host: AdoptionHost,
  rec: InstanceRecord,
  handle: NonNullable<InstanceRecord['handle']>,
  unreachableSince: Map<string, number>,
): Promise<boolean> {
  for (;;) {
    try {
      const adopted = await host.agents.of(rec).adopt(handle);
      unreachableSince.delete(rec.host);
      return adopted;
    } catch (err) {
      if (!isUnderstudyError(err, ErrorCode.AgentUnreachable)) throw err;
      const since = unreachableSince.get(rec.host) ?? Date.now();
      unreachableSince.set(rec.host, since);
      if (Date.now() - since >= host.timeouts.adoptUnreachableMs) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
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
