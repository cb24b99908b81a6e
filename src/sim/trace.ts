import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** A load trace: strictly increasing times (ms) and non-negative values. */
export interface Trace {
  /** Where it came from (file name), for reports and errors. */
  source: string;
  /** Sample times in ms since the epoch, strictly increasing. */
  times: Float64Array;
  /** Sample values (the trace's unit; scaled to requests/s by the simulator). */
  values: Float64Array;
  /** Median spacing of the samples (ms). */
  stepMs: number;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// ISO 8601 date-time, or NAB's `YYYY-MM-DD HH:MM:SS`; no zone means UTC.
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

function fail(source: string, line: number, message: string): never {
  throw new UnderstudyError(ErrorCode.PredictInput, `${source}:${line}: ${message}`, {
    details: { file: source, line },
  });
}

/** Parses a timestamp cell: Unix seconds (a number) or an ISO 8601 date-time; ms or NaN. */
export function parseTimestamp(cell: string): number {
  if (NUMBER.test(cell)) return Number(cell) * 1000;
  const m = ISO.exec(cell);
  if (!m) return Number.NaN;
  const zone = m[8] ?? 'Z';
  const z = zone === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return Date.parse(
    `${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}${m[7] ?? ''}${z}`,
  );
}

/**
 * Parses a `timestamp,value` CSV: timestamps in Unix seconds or ISO 8601 (no zone = UTC), values
 * finite and ≥ 0, an optional header line, blank lines ignored, at least two rows, times strictly
 * increasing. Quoted cells are unquoted.
 *
 * Thrown when anything else is found: an `UnderstudyError` with code `UNDERSTUDY_ERR_PREDICT_INPUT`
 * whose message starts with `source:line:` and whose details hold `file` and `line`.
 */
export function parseTrace(text: string, source: string): Trace {
  const times: number[] = [];
  const values: number[] = [];
  const lines = text.split('\n');
  let firstContent = true;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    const line = raw.trim();
    if (line === '') continue;
    const cells = line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    const isFirst = firstContent;
    firstContent = false;
    if (cells.length !== 2) {
      if (isFirst && cells.length > 2 && !NUMBER.test(cells[1] ?? ''))
        fail(source, i + 1, `expected a header of two columns (timestamp,value), found ${cells.length}`);
      fail(source, i + 1, `expected two columns (timestamp,value), found ${cells.length}`);
    }
    const [tc, vc] = cells as [string, string];
    const t = parseTimestamp(tc);
    if (Number.isNaN(t)) {
      if (isFirst && !NUMBER.test(vc)) continue; // header
      fail(source, i + 1, `timestamp '${tc.slice(0, 40)}' is neither Unix seconds nor an ISO 8601 date-time`);
    }
    if (!NUMBER.test(vc)) fail(source, i + 1, `value '${vc.slice(0, 40)}' is not a number`);
    const v = Number(vc);
    if (!Number.isFinite(v) || v < 0) fail(source, i + 1, `value ${vc} must be finite and ≥ 0`);
    const prev = times[times.length - 1];
    if (prev !== undefined && t <= prev)
      fail(source, i + 1, `timestamp ${tc} is not after the previous row's`);
    times.push(t);
    values.push(v);
  }
  if (times.length < 2)
    fail(source, lines.length, `expected at least two rows of timestamp,value, found ${times.length}`);
  const diffs: number[] = [];
  for (let i = 1; i < times.length; i++) diffs.push(times[i]! - times[i - 1]!);
  diffs.sort((a, b) => a - b);
  return {
    source,
    times: Float64Array.from(times),
    values: Float64Array.from(values),
    stepMs: diffs[Math.floor(diffs.length / 2)]!,
  };
}
