import type { Agent, FileSync, ServiceFileSyncOptions } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import type { StateStore } from '../store/index.js';
import type { DecisionLog } from './decision-log.js';
import type { ExternalRouting } from './external-routing.js';
import { HostsFileSync, type HostsFileSyncDeps } from './hosts-file-sync.js';
import type { InstanceRecord } from './records.js';
import { ServiceDataPlane } from './service-data-plane.js';

/** What a service's wiring reports back to the control plane. */
export interface ServiceWiringDeps {
  /** The service's epoch at start. */
  epoch: number;
  /** The agent of the host the service's file sync runs on (when it runs on one host). */
  agent: Agent;
  /**
   * Distributed mode: the file sync follows the primary's host and reaches echoes on other hosts
   * ({@link HostsFileSync}). @default none: the file sync runs on `agent`'s host only
   */
  crossHost?: HostsFileSyncDeps;
  /** The address an instance is reached at. */
  addressOf: (rec: InstanceRecord) => string;
  /** The store routers in other processes follow (the routing record is written there). @default not written */
  store?: StateStore;
  /** The address of each host (host name → address), for routers in other processes. @default {} */
  hosts?: Record<string, string>;
  decisions: DecisionLog;
  /** The primary's utilisation 0..1 (drives eager file sync). */
  utilisation: () => number;
  /** Traffic now goes to this primary. */
  onPrimary: (rec: InstanceRecord, port: number) => void;
  /** An echo's state sync reported an error. */
  onSyncTrouble: (echoId: string, message: string) => void;
  /** Directory of the service's durable mutation log (hot echoes). @default in memory only */
  mutationLogDir?: string;
}

/**
 * The per-service machinery the control plane drives: a data plane (router, and replication for hot
 * echoes) for a service with ports, and a file sync for warm and cold echoes.
 */
export async function wireService(
  spec: ServiceSpec,
  deps: ServiceWiringDeps,
): Promise<{ plane?: ServiceDataPlane; files?: FileSync }> {
  const out: { plane?: ServiceDataPlane; files?: FileSync } = {};
  if (Object.keys(spec.ports).length > 0) {
    out.plane = await ServiceDataPlane.create({
      spec,
      epoch: deps.epoch,
      addressOf: deps.addressOf,
      ...(deps.store ? { store: deps.store } : {}),
      ...(deps.hosts ? { hosts: deps.hosts } : {}),
      onEchoSyncChange: (id, inSync, reason) =>
        deps.decisions.record({
          kind: inSync ? 'echo-in-sync' : 'echo-lagging',
          service: spec.name,
          instance: id,
          what: inSync ? `echo ${id} rejoined the synchronous set` : `echo ${id} left the synchronous set`,
          why: reason,
          inputs: {},
          outcome: { status: 'recorded' },
        }),
      onPrimary: deps.onPrimary,
      ...(deps.mutationLogDir ? { mutationLogDir: deps.mutationLogDir } : {}),
    });
    const recovery = out.plane.replication?.log.durable ? out.plane.replication.log.recovery : undefined;
    if (recovery?.torn || recovery?.droppedBeforeGap)
      deps.decisions.record({
        kind: 'mutation-log-recovered',
        service: spec.name,
        what: `reopen the mutation log of ${spec.name} at seq ${recovery.lastSeq}`,
        why: [
          recovery.torn
            ? `a torn last record (a crash during a write) of ${recovery.torn.bytes} bytes was cut off at byte ${recovery.torn.offset} of ${recovery.torn.file}`
            : '',
          recovery.droppedBeforeGap
            ? `${recovery.droppedBeforeGap} segments before a gap (a failed write) were deleted`
            : '',
        ]
          .filter(Boolean)
          .join('; '),
        inputs: { ...recovery },
        outcome: { status: 'recorded' },
      });
  }
  // An external echo is kept in sync by the service's own replication: no file sync.
  if (spec.echo.mode !== 'hot' && spec.echo.mode !== 'external') {
    const sync = spec.echo.sync;
    const options: ServiceFileSyncOptions = {
      service: spec.name,
      settings: {
        mode: sync.mode,
        intervalMs: sync.interval,
        bytesThreshold: sync.bytesThreshold,
        bandwidthLimit: sync.bandwidthLimit,
        priorities: sync.priorities,
        exclude: sync.exclude,
      },
      utilisation: deps.utilisation,
      onEvent: (echo, kind, message) => {
        deps.decisions.record({
          kind: `sync-${kind}`,
          service: spec.name,
          instance: echo,
          what: `state sync to ${echo}: ${kind}`,
          why: message,
          inputs: {},
          outcome: { status: 'recorded' },
        });
        if (kind === 'error') deps.onSyncTrouble(echo, message);
      },
    };
    out.files = deps.crossHost ? new HostsFileSync(options, deps.crossHost) : deps.agent.fileSync(options);
  }
  return out;
}

/** Points DNS and external load balancers at a new primary, as a recorded decision. */
export function routeExternally(
  external: ExternalRouting,
  decisions: DecisionLog,
  spec: ServiceSpec,
  rec: InstanceRecord,
  address: string,
  port: number,
): void {
  if (!external.dns && !spec.routing.haproxy) return;
  const decision = decisions.record({
    kind: 'route',
    service: spec.name,
    instance: rec.id,
    what: `point DNS and load balancers at ${rec.id}`,
    why: `${rec.id} is the primary`,
    inputs: { host: address, port },
    outcome: { status: 'pending' },
  });
  external
    .setPrimary(spec, address, port)
    .then((done) => decisions.settle(decision, 'ok', `${done.join('; ')}`))
    .catch((err: unknown) => decisions.settle(decision, 'failed', `${(err as Error).message}`));
}
