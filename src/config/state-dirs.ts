import { resolve, sep } from 'node:path';
import { expandPlaceholders } from './placeholders.js';
import type { ServiceSpec } from './schema.js';

/** Where the data directory is when the spec does not say (the CLI's `-d`): a root nothing else resolves under. */
const UNKNOWN_DATA_DIR = resolve('/', '<data directory>');

/** A state directory that two instances would share (or one inside the other's). */
export interface StateDirClash {
  /** Index of the service whose `stateDir` is reported. */
  service: number;
  message: string;
}

/**
 * How many instances of a service can exist at once: serving instances up to `scaling.max`, echoes
 * (the spec's, or a warm pool up to the serving maximum), shadows (the spec's, or one on a forecast
 * spike), plus one being replaced (a new echo provisioned while the deposed primary still exists).
 */
export function maxInstances(spec: ServiceSpec): number {
  const echoes = spec.scaling.max > 1 ? Math.max(spec.echo.count, spec.scaling.max) : spec.echo.count;
  const shadows = Math.max(spec.shadow.count, spec.shadow.onForecast ? 1 : 0);
  const total = spec.scaling.max + echoes + shadows;
  return total > 1 ? total + 1 : 1;
}

/** Whether `a` and `b` are the same directory or one is inside the other. */
export function sameOrNested(a: string, b: string): boolean {
  return a === b || a.startsWith(withSep(b)) || b.startsWith(withSep(a));
}

function withSep(dir: string): string {
  return dir.endsWith(sep) ? dir : dir + sep;
}

/**
 * Every instance needs a state directory of its own: a failover rebuilds an echo by deleting its
 * directory and copying the primary's, so two instances (of one service or of two) whose directories are
 * the same or nested would destroy each other's state. Resolves each service's `stateDir` for every
 * instance that can exist at once (instance ids `<service>-1…`; the role and the ports are the same for
 * all of them, because a role changes on promotion and a port is reused after an instance is gone, so
 * neither tells two instances apart over time — only `{instance}` does) and reports each clash once.
 * A state directory may not be, or contain, the data directory either (the store lives there).
 */
export function stateDirClashes(
  services: readonly ServiceSpec[],
  specDir: string,
  dataDir: string | undefined,
): StateDirClash[] {
  const data = dataDir === undefined ? UNKNOWN_DATA_DIR : resolve(specDir, dataDir);
  const clashes: StateDirClash[] = [];
  const seen: { service: number; name: string; instance: string; dir: string }[] = [];
  services.forEach((spec, i) => {
    const ports = Object.fromEntries(Object.keys(spec.ports).map((n) => [n, 0]));
    const dirs: { instance: string; dir: string }[] = [];
    for (let n = 1; n <= maxInstances(spec); n++) {
      const instance = `${spec.name}-${n}`;
      const dir = resolve(
        data,
        expandPlaceholders(spec.stateDir, {
          instance,
          service: spec.name,
          role: 'echo',
          specDir,
          dataDir: data,
          ports,
          stateDir: '',
        }),
      );
      dirs.push({ instance, dir });
    }
    const first = dirs[0];
    if (first && (data === first.dir || data.startsWith(withSep(first.dir)))) {
      clashes.push({
        service: i,
        message: `state directory '${spec.stateDir}' is or contains the data directory; use e.g. 'state/{instance}'`,
      });
      return;
    }
    const reported = new Set<string>();
    for (const [k, a] of dirs.entries()) {
      const others: { instance: string; dir: string; name?: string }[] = [
        ...dirs.slice(0, k),
        ...seen.filter((s) => s.service !== i),
      ];
      for (const b of others) {
        const key = b.name === undefined ? 'self' : `service:${b.name}`;
        if (reported.has(key) || !sameOrNested(a.dir, b.dir)) continue;
        reported.add(key);
        const how = a.dir === b.dir ? 'the same directory' : 'nested directories';
        clashes.push({
          service: i,
          message:
            b.name === undefined
              ? `state directory '${spec.stateDir}' resolves to ${how} for ${b.instance} and ${a.instance} (${b.dir}, ${a.dir}); up to ${dirs.length - 1} instances of '${spec.name}' (serving, echoes, warm pool, shadows) exist at once and each needs its own: use the {instance} placeholder, e.g. 'state/{instance}'`
              : `state directories of ${a.instance} ('${spec.stateDir}') and ${b.instance} of service '${b.name}' are ${how} (${a.dir}, ${b.dir}); every instance needs its own, e.g. 'state/{instance}'`,
        });
      }
    }
    for (const d of dirs) seen.push({ service: i, name: spec.name, ...d });
  });
  return clashes;
}
