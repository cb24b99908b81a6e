import type { ServiceSpec } from '../config/index.js';
import { resumeEchoByReplay } from './echo-resume.js';
import type { ExternalEchoes } from './external-echo.js';
import { provisionExternalEcho } from './external-provision.js';
import type { FailoverHost, FailoverRecord } from './failover-host.js';
import { copyStateBetweenHosts } from './hosts-file-sync.js';
import { stateDirUsers } from './instance-launch.js';
import { moveInstance } from './instance-transition.js';
import type { ControlDecision, InstanceRecord } from './records.js';

/** What provisioning an echo works with: the failover's instances, external echoes and records. */
export interface EchoProvisionContext {
  readonly host: FailoverHost;
  /** The hooks and lag readings of external echoes (`echo.mode: external`). */
  readonly external: ExternalEchoes;
  /** The last failover or switchover of each service (a rejoining deposed primary is its `from`). */
  readonly last: ReadonlyMap<string, FailoverRecord>;
  /** Closes the degraded window of the service's last failover once `caughtUp` resolves true. */
  restoreWhen(rec: InstanceRecord, caughtUp: () => Promise<boolean>): void;
}

/**
 * Brings a slot back as an echo of the current primary: with new mutations paused, copy the primary's
 * state directory (a consistent snapshot: every acknowledged write is on disk), note the log position,
 * resume, start the echo, and replay the log from that position. Used for a replacement echo after a
 * failover, a rejoining old primary, and a restarted echo.
 */
export async function provisionEcho(
  ctx: EchoProvisionContext,
  rec: InstanceRecord,
  decision: ControlDecision,
): Promise<void> {
  const { host } = ctx;
  const spec = host.specOf(rec.service);
  // Its directory is replaced by a copy of the primary's: never one that another instance uses.
  if (await refuseSharedStateDir(host, rec, decision)) return;
  if (!moveInstance(host.decisions, rec, 'provision')) {
    host.decisions.settle(
      decision,
      'failed',
      `${rec.role} ${rec.id} in phase '${rec.phase}' cannot be provisioned as an echo`,
    );
    return;
  }
  if (spec.echo.mode === 'external') {
    await provisionExternal(ctx, spec, rec, decision);
    return;
  }
  const files = host.services.files(rec.service);
  if (files) {
    // Warm and cold: the file sync makes the initial full copy, then keeps it continuous. The agent
    // creates the directory and its sync journal owner-only first.
    await host.agents.of(rec).prepareSyncTarget(rec.stateDir);
    await files.addEcho(rec.id, rec.stateDir);
    if (spec.echo.mode === 'cold') {
      moveInstance(host.decisions, rec, 'standby');
      delete rec.pid;
      delete rec.health;
      await host.save(rec);
      host.decisions.settle(decision, 'ok', 'cold echo kept in sync, not running; it starts on promotion');
    } else {
      await host.launch(rec, decision);
    }
    ctx.restoreWhen(rec, () => files.waitCaughtUp(rec.id, host.timeouts.fileRestoreMs));
    return;
  }
  const primary = host.instancesOf(rec.service).find((i) => i.role === 'primary' && i.id !== rec.id);
  const plane = host.services.plane(rec.service);
  if (primary && plane) {
    const resumed = await resumeEchoByReplay(host, rec, decision);
    if (resumed === true) {
      const replication = plane.replication;
      if (replication)
        ctx.restoreWhen(rec, () => replication.waitCaughtUp(rec.id, host.timeouts.replayRestoreMs));
      return;
    }
    if (resumed) decision = resumed;
  }
  let fromSeq = 0;
  if (primary && plane && primary.host !== rec.host) {
    fromSeq = await seedAcrossHosts(host, spec, rec, primary, decision);
  } else if (primary && plane) {
    await plane.router.pause();
    try {
      fromSeq = plane.replication?.log.lastSeq ?? 0;
      // Only where the state is (the agent API takes nothing else: a whole record is refused).
      await host.agents
        .of(rec)
        .snapshotState({ host: primary.host, stateDir: primary.stateDir }, rec.stateDir);
    } finally {
      plane.router.resume();
    }
  }
  await host.launch(rec, decision);
  if (!plane || rec.phase === 'failed') return;
  // Replay once it listens, so write-through does not wait on a process that is still starting.
  await host.waitReady(rec, host.timeouts.echoReadyMs);
  plane.addEcho(rec, fromSeq);
  const replication = plane.replication;
  if (replication)
    ctx.restoreWhen(rec, () => replication.waitCaughtUp(rec.id, host.timeouts.replayRestoreMs));
}

/** Longest a cross-host seed copy may hold the router's mutations paused before it is given up. */
const CROSS_HOST_COPY_MAX_MS = 30_000;

/**
 * A hot echo on another host than its primary (state directories are each host's own): with new
 * mutations paused, a one-shot copy of the primary's directory between the two agents over the
 * cross-host file sync ({@link copyStateBetweenHosts}), at the log's position then; returns that
 * position. When the agents cannot copy (or the copy fails) and the mutation log began with the
 * service and still holds every mutation, the echo starts empty and replays it all (from 0). Otherwise
 * the copy's UNDERSTUDY_ERR_STATE_DIR is thrown: no echo rather than one missing acknowledged writes.
 */
async function seedAcrossHosts(
  host: FailoverHost,
  spec: ServiceSpec,
  rec: InstanceRecord,
  primary: InstanceRecord,
  decision: ControlDecision,
): Promise<number> {
  const plane = host.services.plane(rec.service)!;
  const log = plane.replication?.log;
  const s = spec.echo.sync;
  await plane.router.pause();
  try {
    const at = log?.lastSeq ?? 0;
    await copyStateBetweenHosts((h) => host.agents.get(h), {
      service: rec.service,
      from: { host: primary.host, stateDir: primary.stateDir },
      to: { id: rec.id, host: rec.host, stateDir: rec.stateDir },
      settings: {
        mode: 'continuous',
        intervalMs: s.interval,
        bytesThreshold: s.bytesThreshold,
        bandwidthLimit: s.bandwidthLimit,
        priorities: s.priorities,
        exclude: [],
      },
      timeoutMs: Math.min(host.timeouts.fileRestoreMs, CROSS_HOST_COPY_MAX_MS),
    });
    decision.inputs = { ...decision.inputs, copiedFrom: primary.host, copiedAtSeq: at };
    return at;
  } catch (err) {
    if (!(log?.fromGenesis && log.firstKeptSeq <= 1)) throw err;
    decision.inputs = { ...decision.inputs, replayFromGenesis: (err as Error).message };
  } finally {
    plane.router.resume();
  }
  await host.agents.of(rec).removeState(rec.stateDir);
  return 0;
}

/** An external echo: see {@link provisionExternalEcho}; redundancy is back once a lag reading says 0. */
async function provisionExternal(
  ctx: EchoProvisionContext,
  spec: ServiceSpec,
  rec: InstanceRecord,
  decision: ControlDecision,
): Promise<void> {
  const { host, external } = ctx;
  const rejoin = ctx.last.get(rec.service)?.from === rec.id;
  if (await provisionExternalEcho(host, external, { spec, rec, decision, rejoin }))
    ctx.restoreWhen(rec, () => external.waitInSync(rec.id, spec, host.timeouts.fileRestoreMs));
}

/**
 * Before a state directory is deleted: if another instance uses it (the same or a nested directory),
 * nothing is deleted, the instance is marked failed and the decision says why. Returns whether it
 * refused.
 */
export async function refuseSharedStateDir(
  host: FailoverHost,
  rec: InstanceRecord,
  decision: ControlDecision,
): Promise<boolean> {
  const users = stateDirUsers(rec, host.allInstances());
  if (users.length === 0) return false;
  moveInstance(host.decisions, rec, 'fail');
  await host.save(rec);
  decision.inputs = { ...decision.inputs, stateDir: rec.stateDir, sharedWith: users.map((u) => u.id) };
  host.decisions.settle(
    decision,
    'failed',
    `refusing to delete the state directory ${rec.stateDir} of ${rec.id}: ${users
      .map((u) => `${u.id} (${u.stateDir})`)
      .join(
        ', ',
      )} use${users.length === 1 ? 's' : ''} it; give every instance its own stateDir, e.g. 'state/{instance}'`,
  );
  return true;
}

/**
 * Seed 002: recreates an echo whose state sync keeps failing — its state directory and sync journal
 * are removed and it is provisioned again from a full copy. The caller has stopped its process.
 */
export async function recreateEcho(
  ctx: EchoProvisionContext,
  rec: InstanceRecord,
  decision: ControlDecision,
): Promise<void> {
  const { host } = ctx;
  if (await refuseSharedStateDir(host, rec, decision)) return;
  await host.services.files(rec.service)?.removeEcho(rec.id);
  await host.agents.of(rec).removeState(rec.stateDir);
  await provisionEcho(ctx, rec, decision);
}
