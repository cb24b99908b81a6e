import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** Mean I/O latency of the host's block devices since the last call, ms (from /proc/diskstats). */
export class DiskLatency {
  #last: { ios: number; ms: number } | undefined;

  sample(): number {
    let ios = 0;
    let ms = 0;
    try {
      for (const line of readFileSync('/proc/diskstats', 'latin1').split('\n')) {
        const f = line.trim().split(/\s+/);
        if (f.length < 14 || f[2]?.startsWith('loop') || f[2]?.startsWith('ram')) continue;
        ios += Number(f[3]) + Number(f[7]);
        ms += Number(f[6]) + Number(f[10]);
      }
    } catch {
      return 0;
    }
    const prev = this.#last;
    this.#last = { ios, ms };
    if (!prev || ios <= prev.ios) return 0;
    return (ms - prev.ms) / (ios - prev.ios);
  }
}

/** One-minute load average per core of this host (0 when unknown). */
export function loadPerCore(): number {
  const n = cpus().length;
  return n > 0 ? (loadavg()[0] ?? 0) / n : 0;
}
