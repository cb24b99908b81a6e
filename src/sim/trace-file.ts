import { readFile } from 'node:fs/promises';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { parseTrace } from './trace.js';
import type { Trace } from './trace.js';

/**
 * Reads and parses a `timestamp,value` CSV trace (see {@link parseTrace}).
 * Thrown when the file cannot be read or is malformed: `UNDERSTUDY_ERR_PREDICT_INPUT` naming the file (and line).
 */
export async function readTraceFile(path: string): Promise<Trace> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UnderstudyError(
      ErrorCode.PredictInput,
      `${path}: cannot read the trace: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err, details: { file: path } },
    );
  }
  return parseTrace(text, path);
}
