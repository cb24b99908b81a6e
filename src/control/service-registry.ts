import type { FileSync } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import type { InstanceRecord } from './records.js';
import type { ServiceDataPlane } from './service-data-plane.js';
import { wireService, type ServiceWiringDeps } from './service-wiring.js';

/**
 * The per-service machinery the control plane drives, by service name: the data plane (router, and
 * replication for hot echoes) of a service with ports, and the file sync of a warm or cold service.
 * It creates them ({@link ServiceRegistry.wire}) and closes them; everyone else only looks them up.
 */
export class ServiceRegistry {
  readonly #planes = new Map<string, ServiceDataPlane>();
  readonly #files = new Map<string, FileSync>();

  /** Creates and keeps a service's data plane and file sync (those its spec needs). */
  async wire(spec: ServiceSpec, deps: ServiceWiringDeps): Promise<void> {
    const wired = await wireService(spec, deps);
    if (wired.plane) this.#planes.set(spec.name, wired.plane);
    if (wired.files) this.#files.set(spec.name, wired.files);
  }

  /** The data plane of a service (undefined: it has no ports, or it is not wired yet). */
  plane(service: string): ServiceDataPlane | undefined {
    return this.#planes.get(service);
  }

  /** The file-state sync of a warm or cold service (undefined for a hot one). */
  files(service: string): FileSync | undefined {
    return this.#files.get(service);
  }

  /** Whether an echo has every acknowledged change: mutations (hot) or files (warm, cold). */
  caughtUp(service: string, echo: InstanceRecord): boolean {
    const plane = this.plane(service);
    if (plane?.replication) return plane.replication.atRisk(echo.id).length === 0;
    const files = this.files(service);
    return files ? files.caughtUp(echo.id) : true;
  }

  /** Closes every data plane, then every file sync. */
  async close(): Promise<void> {
    await Promise.all([...this.#planes.values()].map((p) => p.close()));
    await Promise.all([...this.#files.values()].map((f) => f.close()));
  }
}
