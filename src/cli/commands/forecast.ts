import { ApiClient } from '../../api/index.js';
import type { AccuracyReport, AccuracySummary } from '../../predict/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { table } from '../output.js';

export interface ForecastOptions {
  dataDir: string;
  service: string;
  output: 'table' | 'json';
}

/** What `GET /v1/services/:name/forecast` answers. */
export type ForecastReply =
  | ({ service: string; forecasting: true } & AccuracyReport)
  | { service: string; forecasting: false; note: string };

const num = (x: number | undefined, digits = 2): string => (x === undefined ? '-' : x.toFixed(digits));

function row(name: string, s: AccuracySummary): string[] {
  return [
    name,
    String(s.pairs),
    num(s.mase),
    s.coverage === undefined ? '-' : `${(s.coverage * 100).toFixed(0)} %`,
    num(s.mae, 1),
    num(s.naiveMae, 1),
    s.note,
  ];
}

/** The `forecast` command's table: one row per window. */
export function formatForecast(r: ForecastReply): string {
  if (!r.forecasting) return `${r.service}: ${r.note}\n`;
  return (
    table(
      ['WINDOW', 'RESOLVED', 'MASE', 'COVERAGE', 'MAE', 'NAIVE MAE', 'NOTE'],
      [row('last hour', r.hour), row('last day', r.day)],
    ) +
    `${r.pending} forecast(s) not yet due. MASE < 1: better than "the load stays as it is"; coverage: share of actuals inside the forecast interval.\n`
  );
}

/** `understudy forecast <service>`: forecast against actual over the last hour and day. */
export async function runForecast(options: ForecastOptions): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const r = await client.request<ForecastReply>(
      'GET',
      `/v1/services/${encodeURIComponent(options.service)}/forecast`,
    );
    process.stdout.write(options.output === 'json' ? JSON.stringify(r, null, 2) + '\n' : formatForecast(r));
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}
