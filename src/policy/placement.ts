// Placement: which host an instance goes to. Pure: hosts and instances in, a decision out.
import type { DecisionInputs } from './decision.js';

/** A host's state as placement sees it: only `up` hosts take new instances. */
export type PlacementHostState = 'up' | 'suspect' | 'draining' | 'down';

/** A host offered to placement: its capacity and what is already used of it. */
export interface PlacementHost {
  name: string;
  /** Availability zone; hosts without one share the zone `''`. */
  zone?: string;
  state: PlacementHostState;
  /** Capacity in cores. */
  cores: number;
  memoryBytes: number;
  /** Cores already reserved by instances on the host. */
  usedCores: number;
  usedMemoryBytes: number;
}

/** What an instance is to placement. `warm`: a warm-pool echo. */
export type PlacementRole = 'primary' | 'echo' | 'shadow' | 'warm';

/** An instance already placed. */
export interface PlacementInstance {
  id: string;
  service: string;
  role: PlacementRole;
  host: string;
  /** Cores reserved for it. */
  cores: number;
  memoryBytes: number;
}

/**
 * What to place: an echo of primary `primary`; a shadow of live instance `live`; a warm-pool echo of
 * `service`; or the migration target of instance `instance`.
 */
export type PlacementRequest =
  | { kind: 'echo'; primary: string }
  | { kind: 'shadow'; live: string }
  | { kind: 'warm-pool'; service: string }
  | { kind: 'primary'; service: string }
  | { kind: 'migration'; instance: string };

/** The input of {@link place}. */
export interface PlacementInput {
  hosts: readonly PlacementHost[];
  instances: readonly PlacementInstance[];
  request: PlacementRequest;
  /** What the new instance reserves. */
  need: { cores: number; memoryBytes: number };
  /** Decision time (ms, the caller's clock). */
  at: number;
}

/** A placement, shaped as the other policies' decisions: what, whether, why, on what inputs. */
export interface PlacementDecision {
  kind: 'place';
  at: number;
  request: PlacementRequest;
  /** Whether a host was found; false: `reason` says why nothing fits. */
  applied: boolean;
  /** The chosen host (when applied). */
  host?: string;
  /** The chosen host's zone (when applied). */
  zone?: string;
  /** One line on why this host (or why none). */
  reason: string;
  /** Hosts considered, hosts that fit, and the chosen host's utilisation after placing. */
  inputs: DecisionInputs;
}

const zoneOf = (h: { zone?: string }): string => h.zone ?? '';

/** Whether `need` fits on `h` (nothing ever exceeds capacity). */
export function fits(h: PlacementHost, need: { cores: number; memoryBytes: number }): boolean {
  return h.usedCores + need.cores <= h.cores && h.usedMemoryBytes + need.memoryBytes <= h.memoryBytes;
}

/** The larger of cores and memory utilisation after placing `need` on `h`, in [0, 1]. */
function utilisationAfter(h: PlacementHost, need: { cores: number; memoryBytes: number }): number {
  const c = h.cores > 0 ? (h.usedCores + need.cores) / h.cores : 1;
  const m = h.memoryBytes > 0 ? (h.usedMemoryBytes + need.memoryBytes) / h.memoryBytes : 1;
  return Math.max(c, m);
}

/** A candidate with its rank: lower tuples win, element by element; then the host name. */
interface Ranked {
  host: PlacementHost;
  rank: number[];
  why: string;
}

function refuse(input: PlacementInput, reason: string, inputs: DecisionInputs): PlacementDecision {
  return { kind: 'place', at: input.at, request: input.request, applied: false, reason, inputs };
}

/**
 * Chooses a host for one new instance. Only `up` hosts with room for `need` are candidates. Then, by
 * request:
 * - echo: never its primary's host while another candidate exists (anti-affinity), then another zone
 *   than the primary's, then hosts holding fewer instances of the service;
 * - shadow: only hosts in its live instance's zone (seed 002), preferring another host than the live
 *   instance's, then hosts holding fewer instances of the service (the zone's pool spreads);
 * - warm-pool and primary (a new serving instance of `service`): the zone with fewest of the service's
 *   instances, then the host with fewest (spread across zones);
 * - migration: never the instance's own host, and not the host of one of its echoes while another
 *   candidate exists.
 * Ties go to the least utilised host after placing, then to the host name (deterministic). Refuses,
 * with the reason, when no host fits.
 */
export function place(input: PlacementInput): PlacementDecision {
  const { hosts, instances, request, need } = input;
  const up = hosts.filter((h) => h.state === 'up');
  const candidates = up.filter((h) => fits(h, need));
  const base: DecisionInputs = {
    hosts: hosts.length,
    hostsUp: up.length,
    hostsFitting: candidates.length,
    needCores: need.cores,
    needMemoryBytes: need.memoryBytes,
  };
  const byId = new Map(instances.map((i) => [i.id, i]));
  const hostByName = new Map(hosts.map((h) => [h.name, h]));
  const subjectId =
    request.kind === 'echo'
      ? request.primary
      : request.kind === 'shadow'
        ? request.live
        : request.kind === 'migration'
          ? request.instance
          : undefined;
  const subject = subjectId === undefined ? undefined : byId.get(subjectId);
  if (subjectId !== undefined && !subject)
    return refuse(input, `no instance '${subjectId}' to place relative to`, base);
  const service =
    subject?.service ?? (request.kind === 'warm-pool' || request.kind === 'primary' ? request.service : '');
  const ofService = instances.filter((i) => i.service === service);
  const countOn = (host: string): number => ofService.filter((i) => i.host === host).length;

  if (candidates.length === 0) {
    const why =
      up.length === 0
        ? `no host is up (${hosts.length} known)`
        : `no host has room for ${need.cores} cores and ${need.memoryBytes} bytes (${up.length} up, all full)`;
    return refuse(input, why, base);
  }

  let ranked: Ranked[];
  switch (request.kind) {
    case 'echo': {
      const p = subject as PlacementInstance;
      const pZone = zoneOf(hostByName.get(p.host) ?? {});
      ranked = candidates.map((h) => ({
        host: h,
        rank: [h.name === p.host ? 1 : 0, zoneOf(h) === pZone ? 1 : 0, countOn(h.name)],
        why:
          h.name === p.host
            ? `no other host has room: shares its primary's host ${p.host}`
            : zoneOf(h) !== pZone
              ? `another host and zone than its primary's (${p.host}, zone ${pZone || '-'})`
              : `another host than its primary's (${p.host}); no other zone has room`,
      }));
      break;
    }
    case 'shadow': {
      const l = subject as PlacementInstance;
      const lZone = zoneOf(hostByName.get(l.host) ?? {});
      const inZone = candidates.filter((h) => zoneOf(h) === lZone);
      if (inZone.length === 0)
        return refuse(
          input,
          `no host in the live instance's zone ${lZone || '-'} has room (shadows stay in their zone)`,
          base,
        );
      ranked = inZone.map((h) => ({
        host: h,
        rank: [h.name === l.host ? 1 : 0, countOn(h.name)],
        why:
          h.name === l.host
            ? `in its live instance's zone ${lZone || '-'}, on its host (no other host there has room)`
            : `in its live instance's zone ${lZone || '-'}, on another host`,
      }));
      break;
    }
    case 'primary':
    case 'warm-pool': {
      const perZone = new Map<string, number>();
      for (const i of ofService) {
        const z = zoneOf(hostByName.get(i.host) ?? {});
        perZone.set(z, (perZone.get(z) ?? 0) + 1);
      }
      ranked = candidates.map((h) => ({
        host: h,
        rank: [perZone.get(zoneOf(h)) ?? 0, countOn(h.name)],
        why: `spread across zones: zone ${zoneOf(h) || '-'} holds ${perZone.get(zoneOf(h)) ?? 0} of the service's instances`,
      }));
      break;
    }
    case 'migration': {
      const m = subject as PlacementInstance;
      const others = candidates.filter((h) => h.name !== m.host);
      if (others.length === 0)
        return refuse(input, `no host other than ${m.host} has room to migrate ${m.id} to`, base);
      const echoHosts = new Set(
        m.role === 'primary'
          ? ofService.filter((i) => i.role === 'echo' && i.id !== m.id).map((i) => i.host)
          : [],
      );
      ranked = others.map((h) => ({
        host: h,
        rank: [echoHosts.has(h.name) ? 1 : 0],
        why: echoHosts.has(h.name)
          ? `another host than ${m.host}; only a host of its echo has room`
          : `another host than ${m.host}, not holding its echo`,
      }));
      break;
    }
  }
  ranked.sort((a, b) => {
    for (let k = 0; k < Math.max(a.rank.length, b.rank.length); k++) {
      const d = (a.rank[k] ?? 0) - (b.rank[k] ?? 0);
      if (d !== 0) return d;
    }
    const u = utilisationAfter(a.host, need) - utilisationAfter(b.host, need);
    if (u !== 0) return u;
    return a.host.name < b.host.name ? -1 : a.host.name > b.host.name ? 1 : 0;
  });
  const best = ranked[0] as Ranked;
  const util = utilisationAfter(best.host, need);
  return {
    kind: 'place',
    at: input.at,
    request,
    applied: true,
    host: best.host.name,
    zone: zoneOf(best.host),
    reason: `${best.why}; ${(util * 100).toFixed(0)}% used after`,
    inputs: { ...base, utilisationAfter: util },
  };
}
