import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { ControlDecision } from '../control/index.js';
import { formatDecision } from './format-decision.js';

/** Log formats of `understudy up`. */
export type LogFormat = 'json' | 'text';

/** Log levels of `understudy up` (pino's). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /**
   * `json`: one JSON object per line (pino's format, for log shippers); `text`: the one-line decision
   * format people read. @default `text` when `stream` is a terminal, `json` otherwise
   */
  format?: LogFormat;
  /** Records below this level are dropped. @default 'info' */
  level?: LevelWithSilent;
  /** Where the lines go. @default process.stdout */
  stream?: { write(line: string): unknown; isTTY?: boolean };
}

/**
 * Paths never logged (values replaced by `[redacted]`): the spec's `env` values (the spec has no
 * per-value secret marker, so every env value counts as secret), tokens, authorization headers and
 * passwords, at the depths decisions' inputs carry them.
 */
export const REDACT_PATHS: readonly string[] = [
  'env',
  '*.env',
  '*.*.env',
  '*.*.*.env',
  'token',
  '*.token',
  '*.*.token',
  '*.*.*.token',
  'authorization',
  '*.authorization',
  '*.*.authorization',
  '*.*.*.authorization',
  'password',
  '*.password',
  '*.*.password',
];

/** The format `understudy up` uses: the given one, else text on a terminal and JSON when piped. */
export function resolveLogFormat(format: LogFormat | undefined, isTTY: boolean | undefined): LogFormat {
  return format ?? (isTTY ? 'text' : 'json');
}

/**
 * A pino logger for `understudy up`. JSON goes out as pino writes it. Text is formatted here rather
 * than by pino-pretty: pino-pretty prints a decision's nested inputs as an indented block of several
 * lines, while operators already read the one line per decision of {@link formatDecision}; other
 * records are `understudy: <msg>`. Writes are synchronous, so no record is lost on exit.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stdout;
  const format = resolveLogFormat(options.format, stream.isTTY);
  const destination =
    format === 'json'
      ? stream === process.stdout
        ? pino.destination({ fd: 1, sync: true })
        : stream
      : { write: (line: string) => stream.write(textLine(line)) };
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** One pino JSON line as text. */
function textLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  if (rec.seq !== undefined && rec.kind !== undefined) {
    const d = { ...rec, at: Date.parse(String(rec.decidedAt)) } as unknown as ControlDecision;
    return formatDecision(d) + '\n';
  }
  const level = rec.level === 'info' ? '' : `${String(rec.level)}: `;
  return `understudy: ${level}${String(rec.msg ?? '')}\n`;
}

/** The level of a decision's record: failed ones warn, `error` decisions are errors. */
export function decisionLevel(d: ControlDecision): 'info' | 'warn' | 'error' {
  if (d.kind === 'error') return 'error';
  return d.outcome.status === 'failed' || d.outcome.status === 'refused' ? 'warn' : 'info';
}

/**
 * Logs a decision as one record with its fields: seq, kind, service, instance, what, why, inputs,
 * outcome, the service's epoch (when known) and when it was decided.
 */
export function logDecision(log: Logger, d: ControlDecision, epoch?: number): void {
  const fields = {
    seq: d.seq,
    kind: d.kind,
    service: d.service,
    ...(d.instance !== undefined ? { instance: d.instance } : {}),
    what: d.what,
    why: d.why,
    inputs: d.inputs,
    outcome: d.outcome,
    ...(epoch !== undefined ? { epoch } : {}),
    decidedAt: new Date(d.at).toISOString(),
  };
  log[decisionLevel(d)](fields, `${d.kind}: ${d.what}`);
}
