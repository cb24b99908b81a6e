import type { ServiceSpec } from '../config/index.js';
import { ExternalEchoes, type ExternalEchoHost } from './external-echo.js';
import { moveInstance } from './instance-transition.js';
import type { ControlDecision, InstanceRecord } from './records.js';

/** What {@link provisionExternalEcho} needs of the instance supervisor (a `FailoverHost` is one). */
export interface ExternalProvisionHost extends ExternalEchoHost {
  launch(rec: InstanceRecord, decision: ControlDecision): Promise<void>;
  waitReady(rec: InstanceRecord, timeoutMs: number): Promise<boolean>;
}

/** What {@link provisionExternalEcho} provisions. */
export interface ExternalProvision {
  spec: ServiceSpec;
  rec: InstanceRecord;
  /** The provisioning decision (settled by the launch, or failed here). */
  decision: ControlDecision;
  /** `rec` was the primary before (a deposed primary rejoining). */
  rejoin: boolean;
}

/**
 * Provisions an external echo (docs/recipes.md): no copy, no file sync — its state directory is kept
 * (a deposed primary rejoins from its own data). Once the primary answers: `prepare`, start, then once it
 * is ready `follow` (or `rejoin`). Returns whether it follows; a failing `prepare` fails the instance.
 */
export async function provisionExternalEcho(
  host: ExternalProvisionHost,
  ext: ExternalEchoes,
  p: ExternalProvision,
): Promise<boolean> {
  const { spec, rec, decision, rejoin } = p;
  const primary = host.instancesOf(rec.service).find((i) => i.role === 'primary' && i.id !== rec.id);
  // An echo follows (or copies) a primary that serves: a primary starting beside it answers first.
  if (primary) await host.waitReady(primary, host.timeouts.echoReadyMs);
  if (ExternalEchoes.hookOf(spec, 'prepare')) {
    try {
      await ext.run(spec, {
        hook: 'prepare',
        target: ext.party(rec),
        primary: primary ? ext.party(primary) : undefined,
        epoch: rec.epoch,
        rejoin,
      });
    } catch (err) {
      moveInstance(host.decisions, rec, 'fail');
      await host.save(rec);
      host.decisions.settle(decision, 'failed', (err as Error).message);
      return false;
    }
  }
  await host.launch(rec, decision);
  if (rec.phase === 'failed') return false;
  await host.waitReady(rec, host.timeouts.echoReadyMs);
  return ext.follow(spec, rec, ext.primaryOf(rec.service, rec.id) ?? primary, rejoin);
}
