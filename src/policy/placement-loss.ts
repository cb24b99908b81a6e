// What to do when a host is lost: promote echoes of its primaries elsewhere, and re-create its echoes,
// shadows and warm-pool echoes on the hosts left, each placed by `place`. Pure.
import {
  place,
  type PlacementDecision,
  type PlacementHost,
  type PlacementInstance,
  type PlacementRequest,
} from './placement.js';

/** One step of a {@link HostLossPlan}. */
export type HostLossStep =
  | {
      /** A primary of the lost host: its echo `echo` (on another host) is promoted in its place. */
      action: 'promote-echo';
      instance: string;
      service: string;
      echo: string;
      host: string;
    }
  | {
      /** A primary of the lost host with no echo elsewhere: nothing to promote (its data is on the lost host). */
      action: 'no-echo';
      instance: string;
      service: string;
    }
  | {
      /** An echo or shadow of the lost host whose service has no primary left to follow: not re-created. */
      action: 'no-primary';
      instance: string;
      service: string;
    }
  | {
      /** A new instance replacing `instance` (an echo, shadow or warm echo of the lost host, or the echo slot a promotion emptied). */
      action: 'recreate';
      instance: string;
      service: string;
      role: 'echo' | 'shadow' | 'warm';
      placement: PlacementDecision;
    };

/** The plan for a lost host: steps in order (promotions first), and how many replacements found no host. */
export interface HostLossPlan {
  lost: string;
  at: number;
  steps: HostLossStep[];
  /** Replacements no host had room for (their `placement.reason` says why). */
  unplaced: number;
}

/** The input of {@link planHostLoss}. */
export interface HostLossInput {
  hosts: readonly PlacementHost[];
  /** Every instance, the lost host's included. */
  instances: readonly PlacementInstance[];
  /** The lost host's name. */
  lost: string;
  at: number;
}

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Plans the recovery from losing host `lost`: each of its primaries fails over to an echo on another
 * host (the lowest id among that service's echoes), which then needs an echo of its own; each of its
 * echoes, shadows and warm-pool echoes is re-created elsewhere. Placements are made one after the
 * other, each seeing the capacity the previous ones took, so the plan never overfills a host.
 */
export function planHostLoss(input: HostLossInput): HostLossPlan {
  let hosts: PlacementHost[] = input.hosts.map((h) =>
    h.name === input.lost ? { ...h, state: 'down' } : { ...h },
  );
  const onLost = input.instances.filter((i) => i.host === input.lost).sort(byId);
  const live: PlacementInstance[] = input.instances
    .filter((i) => i.host !== input.lost)
    .map((i) => ({ ...i }));
  const steps: HostLossStep[] = [];
  /** Instances this plan adds: they hold no data yet, so none is ever promoted. */
  const fresh = new Set<PlacementInstance>();
  let unplaced = 0;

  const recreate = (
    lostOne: PlacementInstance,
    role: 'echo' | 'shadow' | 'warm',
    request: PlacementRequest,
  ): void => {
    const placement = place({
      hosts,
      instances: live,
      request,
      need: { cores: lostOne.cores, memoryBytes: lostOne.memoryBytes },
      at: input.at,
    });
    steps.push({ action: 'recreate', instance: lostOne.id, service: lostOne.service, role, placement });
    if (!placement.applied || placement.host === undefined) {
      unplaced++;
      return;
    }
    const target = placement.host;
    hosts = hosts.map((h) =>
      h.name === target
        ? {
            ...h,
            usedCores: h.usedCores + lostOne.cores,
            usedMemoryBytes: h.usedMemoryBytes + lostOne.memoryBytes,
          }
        : h,
    );
    const added = { ...lostOne, id: `${lostOne.id}~${target}`, role, host: target };
    fresh.add(added);
    live.push(added);
  };
  const primaryOf = (service: string): PlacementInstance | undefined =>
    live.find((i) => i.service === service && i.role === 'primary');

  for (const p of onLost.filter((i) => i.role === 'primary')) {
    const echo = live
      .filter((i) => i.service === p.service && i.role === 'echo' && !fresh.has(i))
      .sort(byId)[0];
    if (!echo) {
      steps.push({ action: 'no-echo', instance: p.id, service: p.service });
      continue;
    }
    echo.role = 'primary';
    steps.push({
      action: 'promote-echo',
      instance: p.id,
      service: p.service,
      echo: echo.id,
      host: echo.host,
    });
    recreate({ ...p, cores: echo.cores, memoryBytes: echo.memoryBytes }, 'echo', {
      kind: 'echo',
      primary: echo.id,
    });
  }
  for (const i of onLost.filter((x) => x.role !== 'primary')) {
    const primary = primaryOf(i.service);
    if (i.role === 'warm') recreate(i, 'warm', { kind: 'warm-pool', service: i.service });
    else if (!primary) {
      steps.push({ action: 'no-primary', instance: i.id, service: i.service });
    } else if (i.role === 'echo') recreate(i, 'echo', { kind: 'echo', primary: primary.id });
    else recreate(i, 'shadow', { kind: 'shadow', live: primary.id });
  }
  return { lost: input.lost, at: input.at, steps, unplaced };
}
