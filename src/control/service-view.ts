import type { EchoFileSyncView, ServiceFileSync } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import type { FailoverRecord } from './failover.js';
import type { InstanceRecord } from './records.js';
import type { DataPlaneView, ServiceDataPlane } from './service-data-plane.js';

/** The service view served by the API and `understudy status`. */
export interface ServiceView {
  name: string;
  epoch: number;
  echoMode: string;
  desired: { primaries: number; echoes: number };
  instances: InstanceRecord[];
  /** The router: public address, serving instance, replication (hot mode). */
  dataPlane?: DataPlaneView;
  /** File-state sync to each warm or cold echo: lag, change rate, bytes on the wire. */
  fileSync?: EchoFileSyncView[];
  lastFailover?: FailoverRecord;
  /** True from a failover until a replacement echo serves as understudy again. */
  degraded: boolean;
}

/** Assembles the view of one service from its parts. */
export function serviceView(
  spec: ServiceSpec,
  epoch: number,
  instances: InstanceRecord[],
  parts: {
    plane: ServiceDataPlane | undefined;
    files: ServiceFileSync | undefined;
    last: FailoverRecord | undefined;
  },
): ServiceView {
  const { plane, files, last } = parts;
  return {
    name: spec.name,
    epoch,
    echoMode: spec.echo.mode,
    desired: { primaries: 1, echoes: spec.echo.count },
    instances,
    ...(plane ? { dataPlane: plane.view() } : {}),
    ...(files ? { fileSync: files.echoes() } : {}),
    ...(last ? { lastFailover: last } : {}),
    degraded:
      (last !== undefined && last.restoredAt === undefined) ||
      (plane?.replication?.echoes().some((e) => !e.inSync) ?? false),
  };
}
