import type { ShadowSignal } from '../policy/index.js';
import type { AgentRegistry } from '../agent/index.js';
import type { InstanceRecord } from './records.js';

/** The shadow signal is policy's plain data type; the measurement is here. */
export type { ShadowSignal } from '../policy/index.js';

/**
 * CPU utilisation of the serving set and, with a running shadow, the shadow signal. Serving instances'
 * CPU (cores) comes from `servingCores`, the control plane's one sampler of them; shadows are sampled here.
 */
export async function measureShadows(
  agents: AgentRegistry,
  servingCores: (id: string) => number | undefined,
  serving: readonly InstanceRecord[],
  instances: readonly InstanceRecord[],
  sample: number,
): Promise<{ servingUtilisation: number; signal?: ShadowSignal }> {
  const cores = async (rec: InstanceRecord): Promise<number | undefined> => {
    const stats = await agents
      .of(rec)
      .stats(rec.id)
      .catch(() => undefined);
    return stats ? stats.cpuPercent / 100 : undefined;
  };
  let servingUtilisation = 0;
  let liveCores = 0;
  let liveLimit = 0;
  let counted = 0;
  for (const rec of serving) {
    const c = servingCores(rec.id);
    if (c === undefined) continue;
    const limit = rec.limits.cpu ?? 1;
    servingUtilisation += c / limit;
    liveCores += c;
    liveLimit += limit;
    counted++;
  }
  const shadows = instances.filter((i) => i.role === 'shadow' && i.phase === 'running');
  if (shadows.length === 0 || counted === 0 || sample <= 0) return { servingUtilisation };
  let shadowCores = 0;
  let shadowLimit = 0;
  let seen = 0;
  for (const rec of shadows) {
    const c = await cores(rec);
    if (c === undefined) continue;
    shadowCores += c;
    shadowLimit += rec.limits.cpu ?? 1;
    seen++;
  }
  if (seen === 0) return { servingUtilisation };
  // Every shadow receives the same `sample` of the traffic: average them, scale to the whole traffic.
  const liveLoad = liveCores / liveLimit;
  const shadowLoad = shadowCores / seen / sample / liveLimit;
  return {
    servingUtilisation,
    signal: {
      liveLoad,
      shadowLoad,
      delta: (shadowLoad - liveLoad) / Math.max(liveLoad, 1e-3),
      shadowUtilisation: shadowCores / shadowLimit,
      shadows: seen,
    },
  };
}
