import { ApiClient } from '../../api/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatDecision } from '../format-decision.js';

export interface EventsOptions {
  dataDir: string;
  follow: boolean;
  limit: number;
  service?: string;
  output: 'table' | 'json';
}

/** `understudy events [-f]`: the control loop's decisions, one per line (or JSON lines). */
export async function runEvents(options: EventsOptions): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const print = (d: Parameters<typeof formatDecision>[0]): void => {
      process.stdout.write((options.output === 'json' ? JSON.stringify(d) : formatDecision(d)) + '\n');
    };
    const filter = options.service ? { service: options.service } : {};
    const first = await client.events({ limit: options.limit, ...filter });
    first.forEach(print);
    if (!options.follow) return ExitCode.Ok;
    let after = first.at(-1)?.seq ?? 0;
    let stopped = false;
    const stop = (): void => {
      stopped = true;
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 300));
      const next = await client.events({ after, limit: 10_000, ...filter });
      next.forEach(print);
      after = next.at(-1)?.seq ?? after;
    }
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}
