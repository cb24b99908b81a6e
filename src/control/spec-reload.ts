import type { ServiceSpec, SpecFile } from '../config/index.js';

/**
 * Service fields a reload applies at once, to the running control plane (dotted paths). Everything
 * else needs a restart of `understudy up` (see docs/operations.md).
 * - `restart`, `stopGrace`: read on the next exit or stop;
 * - `failover.auto`, `failover.failback`: read on the next failure;
 * - `echo.count`, `shadow.count`: the reconciler's desired counts, for services without an autoscaler
 *   (an autoscaler owns the counts of a scaled service);
 * - the {@link REWATCH_FIELDS}: the watches of the service's running instances are started again
 *   with them.
 */
export const LIVE_FIELDS: readonly string[] = [
  'restart',
  'stopGrace',
  'failover.auto',
  'failover.failback',
  'echo.count',
  'shadow.count',
  'health',
  'failover.heartbeat',
  'failover.phiThreshold',
  'failover.acceptablePause',
];

/** Live fields read when an instance's watch starts (health checks, hang detection). */
export const REWATCH_FIELDS: readonly string[] = [
  'health',
  'failover.heartbeat',
  'failover.phiThreshold',
  'failover.acceptablePause',
];

/** One changed field of a reload. Values are given only for live fields (never for `env`). */
export interface ReloadChange {
  /** The service, or '' for a top-level field. */
  service: string;
  /** Dotted path, e.g. `echo.count`, or `services` for an added or removed service. */
  field: string;
  from?: unknown;
  to?: unknown;
}

/** What a reload does: changes applied live, and changes that wait for a restart of `up`. */
export interface ReloadPlan {
  live: ReloadChange[];
  needsRestart: ReloadChange[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function get(spec: ServiceSpec, path: string): unknown {
  let v: unknown = spec;
  for (const k of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[k];
  return v;
}

function set(spec: ServiceSpec, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = spec as unknown as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys[keys.length - 1]!] = value;
}

/** Every field (one level into objects) that differs between two versions of a service. */
function changedFields(a: ServiceSpec, b: ServiceSpec): string[] {
  const out: string[] = [];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const [x, y] = [(a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]];
    if (same(x, y)) continue;
    const objects =
      x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x) && k !== 'env';
    if (!objects) {
      out.push(k);
      continue;
    }
    const sub = new Set([...Object.keys(x), ...Object.keys(y)]);
    for (const s of sub) {
      if (!same((x as Record<string, unknown>)[s], (y as Record<string, unknown>)[s])) out.push(`${k}.${s}`);
    }
  }
  return out;
}

/** Whether `field` is `live` itself or lies under it (`restart.backoff` under `restart`). */
const under = (field: string, live: string): boolean => field === live || field.startsWith(`${live}.`);

/**
 * Compares the running spec with a newly loaded one. `scaled(name)` says whether a service has an
 * autoscaler (its counts are then not live).
 */
export function planReload(
  current: SpecFile,
  next: SpecFile,
  scaled: (service: string) => boolean,
): ReloadPlan {
  const plan: ReloadPlan = { live: [], needsRestart: [] };
  for (const k of ['version', 'dataDir', 'api', 'dns'] as const) {
    if (!same(current[k], next[k])) plan.needsRestart.push({ service: '', field: k });
  }
  const now = new Map(current.services.map((s) => [s.name, s]));
  const then = new Map(next.services.map((s) => [s.name, s]));
  for (const name of new Set([...now.keys(), ...then.keys()])) {
    const [a, b] = [now.get(name), then.get(name)];
    if (!a || !b) {
      plan.needsRestart.push({ service: name, field: 'services', to: b ? 'added' : 'removed' });
      continue;
    }
    for (const field of changedFields(a, b)) {
      const liveField = LIVE_FIELDS.find((l) => under(field, l));
      const counts = liveField === 'echo.count' || liveField === 'shadow.count';
      if (liveField && !(counts && scaled(name)))
        plan.live.push({ service: name, field, from: get(a, field), to: get(b, field) });
      else plan.needsRestart.push({ service: name, field });
    }
  }
  return plan;
}

/** The services whose instances' watches must start again for the live changes of `plan`. */
export function servicesToRewatch(plan: ReloadPlan): string[] {
  const hit = plan.live.filter((c) => REWATCH_FIELDS.some((f) => under(c.field, f)));
  return [...new Set(hit.map((c) => c.service))];
}

/** Applies the live changes of `plan` to the running services, in place (every holder sees them). */
export function applyReload(services: readonly ServiceSpec[], plan: ReloadPlan): void {
  for (const c of plan.live) {
    const spec = services.find((s) => s.name === c.service);
    if (spec) set(spec, c.field, structuredClone(c.to));
  }
}
