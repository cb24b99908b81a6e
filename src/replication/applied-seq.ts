import { request } from 'undici';

/** Where an instance answers the sequence number of the last mutation it applied (the spec's `echo.mutations.appliedSeq`). */
export interface AppliedSeqProbe {
  /** Path of a GET answering JSON. */
  path: string;
  /** Field of that JSON holding the highest `x-understudy-seq` applied. */
  field: string;
}

/**
 * Asks an instance which mutation it applied last: a GET of `probe.path`, the number in `probe.field`
 * of the JSON answer. Resolves `{ seq }`, or `{ error }` saying why not (no answer, not JSON, no such
 * numeric field) — never throws.
 */
export async function askAppliedSeq(
  host: string,
  port: number,
  probe: AppliedSeqProbe,
  timeoutMs = 2000,
): Promise<{ seq: number } | { error: string }> {
  const where = `GET http://${host}:${port}${probe.path}`;
  try {
    const res = await request(`http://${host}:${port}${probe.path}`, {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return { error: `${where} answered HTTP ${res.statusCode}` };
    const value: unknown = (JSON.parse(text) as Record<string, unknown>)[probe.field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      return { error: `${where}: field '${probe.field}' is ${JSON.stringify(value)}, not a sequence number` };
    return { seq: value };
  } catch (err) {
    return { error: `${where}: ${(err as Error).message}` };
  }
}
