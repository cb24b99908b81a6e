/**
 * The pure part of a router that follows the store: what the store says (instance records, the service's
 * epoch, the promotion intent, the control plane's routing record) → what the router must do (epoch,
 * serving set, shadows, paused). No I/O, no clock: the caller passes the time things were first seen.
 */

/** Store key prefix of instance records (`instances/<id>`), as the control plane writes them. */
export const INSTANCE_PREFIX = 'instances/';
/** Store key prefix of promotion intents (`promotions/<service>`), as the control plane writes them. */
export const PROMOTION_PREFIX = 'promotions/';
/** Store key prefix of the routing records the control plane writes for routers (`routing/<service>`). */
export const ROUTING_PREFIX = 'routing/';
/** Store key prefix of the service specs the control plane writes at start (`services/<service>`). */
export const SERVICE_PREFIX = 'services/';
/** Store key prefix of the host records agents write (`hosts/<host>`, with the `address` instances are reached at). */
export const HOSTS_PREFIX = 'hosts/';
/** Store key prefix of the routers following a service (`routers/<service>/<id>`, under each router's lease). */
export const ROUTER_PREFIX = 'routers/';

/**
 * What a router following the store writes about itself under `routers/<service>/<id>`, attached to
 * its lease (gone when the router stops renewing it). The control plane waits for every registered
 * router to hold mutations before a switchover checks that its echo caught up.
 */
export interface RouterRegistration {
  id: string;
  service: string;
  /** Its public address, `host:port`. */
  address: string;
  /** The epoch of the switchover pause it holds mutations for (its forwarded mutations answered). */
  holding?: number;
  at: number;
}

/** The address in a stored host record (`hosts/<host>`); undefined when it has none. */
export function parseHostAddress(value: string): string | undefined {
  const v = parseObject(value);
  return v && typeof v.address === 'string' && v.address.length > 0 ? v.address : undefined;
}

/** Parses a stored router registration; undefined when it is not one. */
export function parseRegistration(value: string): RouterRegistration | undefined {
  const v = parseObject(value);
  if (!v || typeof v.id !== 'string' || typeof v.service !== 'string' || typeof v.address !== 'string')
    return undefined;
  return {
    id: v.id,
    service: v.service,
    address: v.address,
    ...(typeof v.holding === 'number' ? { holding: v.holding } : {}),
    at: typeof v.at === 'number' ? v.at : 0,
  };
}

/**
 * The fields of an instance record (`instances/<id>`) a router reads; the control plane's
 * `InstanceRecord` has these and more.
 */
export interface RoutedInstance {
  id: string;
  service: string;
  role: 'primary' | 'echo' | 'shadow';
  /** 0 is the primary's slot; serving members are ordered by slot. */
  slot: number;
  /** The host the instance runs on: its address comes from the routing record's `hosts`. */
  host: string;
  phase: string;
  ports: Record<string, number>;
  /** The epoch the instance was promoted under (a fencing token). */
  epoch: number;
}

/** The fields of a promotion intent (`promotions/<service>`) a router reads. */
export interface RoutedIntent {
  service: string;
  /** The epoch the promotion's compare-and-set expects, and the one it sets. */
  epoch: number;
  next: number;
}

/**
 * What the control plane writes for routers under `routing/<service>`: what instance records do not say.
 * Written at start and whenever it changes (a planned switchover's pause).
 */
export interface RoutingRecord {
  service: string;
  /** The address instances of each host are reached at (host name → address). */
  hosts: Record<string, string>;
  /**
   * A planned switchover is about to move the primary: hold new mutating requests (reads flow) until it
   * is cleared. `epoch` is the service's epoch when the pause began: it covers that epoch and the next
   * (the switchover's own bump); a pause from before that is stale and ignored.
   */
  pause?: { epoch: number; at: number; reason: string };
}

/** A backend the router sends to (address resolved). */
export interface RouteTarget {
  id: string;
  host: string;
  port: number;
  epoch: number;
}

/** Input of {@link routeState}. */
export interface RouteInput {
  service: string;
  /** The named instance port traffic goes to (`routing.port`); undefined: the first port. */
  portName?: string;
  /** The service's epoch in the store. */
  storeEpoch: number;
  /** The router's current epoch: it never goes backwards. */
  routerEpoch: number;
  /** Every instance record (of any service: others are skipped). */
  instances: readonly RoutedInstance[];
  intent?: RoutedIntent;
  routing?: RoutingRecord;
  /** Whether shadows are mirrored to (the spec has shadows), and the sampled fraction. */
  shadows?: { sample: number };
  /**
   * The pause in force (intent or routing pause) has lasted longer than the bound: serve without it.
   * The caller decides this from when it first saw the pause.
   */
  pauseExpired?: boolean;
}

/** Why the router holds mutating requests. */
export type PauseCause = 'promotion' | 'switchover';

/** What the router must do: the output of {@link routeState}. */
export interface RouteState {
  /** The fencing epoch: max(router epoch, store epoch). */
  epoch: number;
  /** Running primaries at the epoch or newer, by slot (one: the primary; several: a scaled set). */
  serving: RouteTarget[];
  shadows: RouteTarget[];
  /** Mirrored fraction of requests (when shadows exist). */
  sample: number;
  /** Hold new mutating requests: a promotion is in flight, and its bound has not passed. */
  paused: boolean;
  /** What the pause (in force or expired) comes from; undefined when there is none. */
  pauseCause?: PauseCause;
  /** Primary records refused because their epoch is older than {@link RouteState.epoch}. */
  stale: string[];
  /** The intent or routing pause is from an older epoch than the router's: ignored. */
  staleIntent: boolean;
  /** Running instances whose host has no address in the routing record (not routable). */
  unaddressed: string[];
}

/**
 * Decides the router's state from the store. Rules:
 * - the epoch never goes backwards: max(router epoch, store epoch);
 * - serving: running primaries of the service whose epoch is at least that epoch, ordered by slot — a
 *   primary of an older epoch (a deposed, possibly fenced one) is refused and listed in `stale`;
 * - a promotion intent whose `next` epoch is below the router's epoch, or a switchover pause written
 *   more than one epoch ago, belongs to a superseded promotion: ignored (`staleIntent`);
 * - paused while a current intent or switchover pause is present, unless `pauseExpired`: then the
 *   serving set above is served (it never holds an instance of an older epoch, so a primary fenced by
 *   the promotion's epoch bump is never sent a write).
 */
export function routeState(input: RouteInput): RouteState {
  const epoch = Math.max(input.routerEpoch, input.storeEpoch);
  const hosts = input.routing?.hosts ?? {};
  const unaddressed: string[] = [];
  const stale: string[] = [];
  const target = (i: RoutedInstance): RouteTarget | undefined => {
    const host = hosts[i.host];
    const name = input.portName ?? Object.keys(i.ports)[0];
    const port = name === undefined ? undefined : i.ports[name];
    if (host === undefined || port === undefined || port <= 0) {
      unaddressed.push(i.id);
      return undefined;
    }
    return { id: i.id, host, port, epoch: i.epoch };
  };
  const mine = input.instances
    .filter((i) => i.service === input.service && i.phase === 'running')
    .sort((a, b) => a.slot - b.slot || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const serving: RouteTarget[] = [];
  for (const i of mine.filter((r) => r.role === 'primary')) {
    if (i.epoch < epoch) {
      stale.push(i.id);
      continue;
    }
    const t = target(i);
    if (t) serving.push(t);
  }
  const shadows = input.shadows
    ? mine.filter((i) => i.role === 'shadow').flatMap((i) => target(i) ?? [])
    : [];
  const intent = input.intent;
  const intentCurrent = intent !== undefined && intent.service === input.service && intent.next >= epoch;
  const pause = input.routing?.pause;
  // A switchover's pause is written at epoch N and covers the bump to N + 1 it precedes.
  const pauseCurrent = pause !== undefined && pause.epoch + 1 >= epoch;
  const staleIntent = (intent !== undefined && !intentCurrent) || (pause !== undefined && !pauseCurrent);
  const pauseCause: PauseCause | undefined = intentCurrent
    ? 'promotion'
    : pauseCurrent
      ? 'switchover'
      : undefined;
  return {
    epoch,
    serving,
    shadows,
    sample: input.shadows?.sample ?? 0,
    paused: pauseCause !== undefined && !input.pauseExpired,
    ...(pauseCause ? { pauseCause } : {}),
    stale,
    staleIntent,
    unaddressed,
  };
}

/** Parses a stored instance record; undefined when it is not one (a router skips what it cannot read). */
export function parseInstance(value: string): RoutedInstance | undefined {
  const v = parseObject(value);
  if (
    !v ||
    typeof v.id !== 'string' ||
    typeof v.service !== 'string' ||
    (v.role !== 'primary' && v.role !== 'echo' && v.role !== 'shadow') ||
    typeof v.slot !== 'number' ||
    typeof v.host !== 'string' ||
    typeof v.phase !== 'string' ||
    typeof v.ports !== 'object' ||
    v.ports === null ||
    typeof v.epoch !== 'number'
  )
    return undefined;
  const ports: Record<string, number> = {};
  for (const [k, p] of Object.entries(v.ports as Record<string, unknown>))
    if (typeof p === 'number') ports[k] = p;
  return {
    id: v.id,
    service: v.service,
    role: v.role,
    slot: v.slot,
    host: v.host,
    phase: v.phase,
    ports,
    epoch: v.epoch,
  };
}

/** Parses a stored promotion intent; undefined when it is not one. */
export function parseIntent(value: string): RoutedIntent | undefined {
  const v = parseObject(value);
  if (!v || typeof v.service !== 'string' || typeof v.epoch !== 'number' || typeof v.next !== 'number')
    return undefined;
  return { service: v.service, epoch: v.epoch, next: v.next };
}

/** Parses a stored routing record; undefined when it is not one. */
export function parseRouting(value: string): RoutingRecord | undefined {
  const v = parseObject(value);
  if (!v || typeof v.service !== 'string' || typeof v.hosts !== 'object' || v.hosts === null)
    return undefined;
  const hosts: Record<string, string> = {};
  for (const [k, a] of Object.entries(v.hosts as Record<string, unknown>))
    if (typeof a === 'string') hosts[k] = a;
  const p = v.pause as Record<string, unknown> | undefined;
  const pause =
    p && typeof p === 'object' && typeof p.epoch === 'number'
      ? {
          epoch: p.epoch,
          at: typeof p.at === 'number' ? p.at : 0,
          reason: typeof p.reason === 'string' ? p.reason : '',
        }
      : undefined;
  return { service: v.service, hosts, ...(pause ? { pause } : {}) };
}

function parseObject(value: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(value);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
