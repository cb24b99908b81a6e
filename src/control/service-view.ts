import type { EchoFileSyncView, FileSync } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import type { ExternalEchoView } from './external-echo.js';
import type { FailoverRecord } from './failover.js';
import type { AutoscalerView } from './autoscaler.js';
import type { DesiredCounts } from './reconcile.js';
import type { InstanceRecord } from './records.js';
import type { DataPlaneView, ServiceDataPlane } from './service-data-plane.js';

/** The service view served by the API and `understudy status`. */
export interface ServiceView {
  name: string;
  epoch: number;
  echoMode: string;
  /** Instances wanted per role: the spec's counts, or the autoscaler's for a scaled service. */
  desired: { primaries: number; echoes: number; shadows: number };
  instances: InstanceRecord[];
  /** The router: public address, serving instance, replication (hot mode). */
  dataPlane?: DataPlaneView;
  /** File-state sync to each warm or cold echo: lag, change rate, bytes on the wire. */
  fileSync?: EchoFileSyncView[];
  /** External echoes (`echo.mode: external`): each echo's last replication-lag reading. */
  externalEchoes?: ExternalEchoView[];
  lastFailover?: FailoverRecord;
  /** Predictive scaling: load, capacity, forecast, confidence, shadow signal, last decision. */
  scaling?: AutoscalerView;
  /** True from a failover until a replacement echo serves as understudy again. */
  degraded: boolean;
  /** Set while the service is paused (maintenance mode): since when and why. */
  paused?: { at: number; reason: string };
}

/** Assembles the view of one service from its parts. */
export function serviceView(
  spec: ServiceSpec,
  epoch: number,
  instances: InstanceRecord[],
  parts: {
    plane: ServiceDataPlane | undefined;
    files: FileSync | undefined;
    last: FailoverRecord | undefined;
    desired: DesiredCounts;
    scaling: AutoscalerView | undefined;
    external?: ExternalEchoView[] | undefined;
  },
): ServiceView {
  const { plane, files, last, desired, scaling, external } = parts;
  return {
    name: spec.name,
    epoch,
    echoMode: spec.echo.mode,
    desired: { primaries: desired.serving, echoes: desired.echoes, shadows: desired.shadows },
    instances,
    ...(plane ? { dataPlane: plane.view() } : {}),
    ...(files ? { fileSync: files.echoes() } : {}),
    ...(external ? { externalEchoes: external } : {}),
    ...(last ? { lastFailover: last } : {}),
    ...(scaling ? { scaling } : {}),
    degraded:
      (last !== undefined && last.restoredAt === undefined) ||
      (plane?.replication?.echoes().some((e) => !e.inSync) ?? false),
  };
}
