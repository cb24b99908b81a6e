import { ApiClient } from '../../api/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatDecision } from '../format-decision.js';

export interface PromoteOptions {
  dataDir: string;
  service: string;
  kind: 'failover' | 'switchover';
  to?: string;
  reason?: string;
}

/** `understudy failover <service> [--to <echo>]` and `understudy switchover <service> [--to <echo>]`. */
export async function runPromote(options: PromoteOptions): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const decision =
      options.kind === 'failover'
        ? await client.failover(options.service, options.reason, options.to)
        : await client.switchover(options.service, options.to);
    process.stdout.write(formatDecision(decision) + '\n');
    return decision.outcome.status === 'ok' ? ExitCode.Ok : ExitCode.Failure;
  } catch (err) {
    return reportError(err);
  }
}
