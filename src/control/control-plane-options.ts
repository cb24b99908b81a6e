import type { AgentRegistry, Clock, Runtime, TlsIdentity } from '../agent/index.js';
import type { LoadedSpec } from '../config/index.js';
import type { StateStore } from '../store/index.js';
import type { Telemetry } from '../telemetry/index.js';
import type { ClusterHostsOptions } from './cluster-hosts.js';

/** Options of the control plane. */
export interface ControlPlaneOptions {
  spec: LoadedSpec;
  /** Absolute data directory: store, logs, state directories. */
  dataDir: string;
  store: StateStore;
  /**
   * The runtime of the local host, wrapped in a `LocalAgent` registered under `host`. Give either this
   * or `agents`. @default none
   */
  runtime?: Runtime;
  /** The agents instances are reached through, by host. @default one `LocalAgent` over `runtime` */
  agents?: AgentRegistry;
  /** Host name instances are placed on. @default 'local' */
  host?: string;
  /**
   * Distributed mode (`agents` is a `HostAgentRegistry`): heartbeats of the hosts, how long a lost host's
   * instances wait for it, and a host new primaries are pinned to. @default see {@link ClusterHostsOptions}
   */
  hosts?: ClusterHostsOptions;
  /**
   * Distributed mode with TLS: the routers of this control plane reach instances on other hosts over
   * TLS with this identity (the replica's leaf of the cluster CA), at the TLS ingress of each host whose
   * agent has one (its host record says `ingress: true`); instances on this machine, and on hosts
   * without an ingress, stay plain. @default none: plain TCP to every instance
   */
  upstreamTls?: TlsIdentity;
  /** Reconcile period when nothing else triggers it, ms. @default 250 */
  tickMs?: number;
  /** Bytes per instance log file before rotation. @default 10 MiB */
  logMaxBytes?: number;
  /**
   * The metrics registry the control plane reports to: it samples this control plane on every scrape
   * and records promotions and decisions. @default a registry of its own (`ControlPlane.telemetry`)
   */
  telemetry?: Telemetry;
  /** Time and timers (tests inject a `ManualClock`). @default systemClock */
  clock?: Clock;
  /** Timeouts of promotions, readiness and catching up. @default see {@link ControlTimeoutOptions} */
  timeouts?: ControlTimeoutOptions;
}

/** Timeouts of the failover, echo and adoption logic. Every field is optional. */
export interface ControlTimeoutOptions {
  /** How long a promoted cold echo may take to answer its probe, ms. @default 10000 */
  coldPromotionReadyMs?: number;
  /** How long a switchover waits for the target echo's files to catch up, ms. @default 10000 */
  switchoverFilesMs?: number;
  /**
   * How long a switchover of an external echo (`echo.mode: external`) waits, once the old primary no
   * longer takes writes, for the echo's `lag` hook to read 0 bytes behind; past it the old primary
   * serves again and the switchover fails. ms. @default 10000
   */
  switchoverExternalMs?: number;
  /** How long a switchover waits for a hot echo to catch up, in multiples of `echo.mutations.timeout`. @default 5 */
  switchoverMutationsFactor?: number;
  /** How long a promotion hook (HTTP) may take to answer, ms. @default 5000 */
  promotionHookMs?: number;
  /** How long a new or adopted echo may take to answer its probe (before mutation replay starts), ms. @default 10000 */
  echoReadyMs?: number;
  /** Grace period when stopping an echo whose promotion failed half-way, ms. @default 1000 */
  failedPromotionGraceMs?: number;
  /** How long a file-synced replacement echo may take to catch up for redundancy to count as restored, ms. @default 120000 */
  fileRestoreMs?: number;
  /** How long a hot replacement echo may take to replay the log for redundancy to count as restored, ms. @default 60000 */
  replayRestoreMs?: number;
  /** Timeout of one readiness probe while waiting for an instance to answer, ms. @default 200 */
  readyProbeMs?: number;
  /** Pause between two readiness probes, ms. @default 10 */
  readyPollMs?: number;
  /**
   * How long adoption keeps asking a host's agent that cannot be reached (restarting, or its client
   * being replaced) before it gives up on that host's instances, ms. An agent that answers "not
   * running" is believed at once. @default 10000
   */
  adoptUnreachableMs?: number;
}

/** {@link ControlTimeoutOptions} with every default applied. */
export type ControlTimeouts = Required<ControlTimeoutOptions>;

/** Applies the defaults of {@link ControlTimeoutOptions} (once, when the control plane is created). */
export function resolveControlTimeouts(o: ControlTimeoutOptions = {}): ControlTimeouts {
  return {
    coldPromotionReadyMs: 10_000,
    switchoverFilesMs: 10_000,
    switchoverExternalMs: 10_000,
    switchoverMutationsFactor: 5,
    promotionHookMs: 5000,
    echoReadyMs: 10_000,
    failedPromotionGraceMs: 1000,
    fileRestoreMs: 120_000,
    replayRestoreMs: 60_000,
    readyProbeMs: 200,
    readyPollMs: 10,
    adoptUnreachableMs: 10_000,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  };
}
