import type { LoadedSpec } from '../config/index.js';
import type { Runtime } from '../runtime/index.js';
import type { StateStore } from '../store/index.js';
import type { Telemetry } from '../telemetry/index.js';

/** Options of the control plane. */
export interface ControlPlaneOptions {
  spec: LoadedSpec;
  /** Absolute data directory: store, logs, state directories. */
  dataDir: string;
  store: StateStore;
  runtime: Runtime;
  /** Host name instances are placed on. @default 'local' */
  host?: string;
  /** Reconcile period when nothing else triggers it, ms. @default 250 */
  tickMs?: number;
  /** Bytes per instance log file before rotation. @default 10 MiB */
  logMaxBytes?: number;
  /**
   * The metrics registry the control plane reports to: it samples this control plane on every scrape
   * and records promotions and decisions. @default a registry of its own (`ControlPlane.telemetry`)
   */
  telemetry?: Telemetry;
}
