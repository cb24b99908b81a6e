// The shapes around ClusterHosts (src/control/cluster-hosts.ts): the host directory it follows, its
// options, and what it needs from control when a host is lost.
import type { AgentRegistry, HostRecord } from '../agent/index.js';
import type { HostHeartbeatOptions } from '../health/index.js';
import type { InstanceRecord } from './records.js';

/** The hosts control can list and follow: a `HostAgentRegistry` (src/agent), named by shape. */
export interface HostDirectory {
  records(): HostRecord[];
  onHostChange(listener: (change: 'up' | 'down', host: string, record?: HostRecord) => void): () => void;
}

/** The {@link HostDirectory} behind an agent registry, when it is one (distributed mode). */
export function hostDirectoryOf(agents: AgentRegistry): HostDirectory | undefined {
  const d = agents as unknown as Partial<HostDirectory>;
  return typeof d.records === 'function' && typeof d.onHostChange === 'function'
    ? (agents as unknown as HostDirectory)
    : undefined;
}

/** Options of host awareness (distributed mode). */
export interface ClusterHostsOptions {
  /** Heartbeats of the hosts' agents (phi-accrual). @default see {@link HostHeartbeatOptions} */
  heartbeat?: HostHeartbeatOptions;
  /**
   * How long instances of a host that is down (lease lapsed) wait for it to come back before they are
   * re-created on another host, ms. Until then a restart of one of them waits (a partition that heals
   * in time gets its instances back in place: the old primary rejoins as an echo). @default 15000
   */
  replaceAfterMs?: number;
  /** Hosts new primaries go on (`--place-on`); echoes are still placed off their primary's host. @default none */
  placeOn?: string;
  /**
   * Margin on top of a suspected host's self-fence deadline before an echo elsewhere takes over from
   * its primaries, ms: how late the agent's fence (a SIGKILL) may fall after its bound — its own
   * scheduling (it asks the other hosts early and fences at the bound) — and a round trip. Measured:
   * 1–41 ms late under a load average of 9–13 on 2 cores (docs/hosts.md). @default 150
   */
  fenceMarginMs?: number;
}

/** What a lost host's instances need from control. */
export interface HostLossHandler {
  /** A primary of a lost host: fail it over (to `to` when given). Returns whether a failover began. */
  primaryLost(rec: InstanceRecord, detail: string, evidence: Record<string, unknown>, to?: string): boolean;
  /**
   * A shadow of a lost host (seed 001: its heartbeat stopped): take it out of the data plane and have it
   * re-created now; {@link ClusterHosts.restartGate} sends it to another host of its zone.
   */
  shadowLost(rec: InstanceRecord): void;
  /**
   * A primary of a suspected host whose failover waits for the host's self-fence deadline, and the
   * echo planned to take over: what can be done before the switch is done now (the router dials the
   * echo through its host's ingress), so that the wait overlaps it. Must not make the echo serve.
   */
  prepare?(rec: InstanceRecord, echo: string): void;
}
