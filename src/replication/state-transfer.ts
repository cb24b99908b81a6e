import { Transform, type TransformCallback } from 'node:stream';
import { request } from 'undici';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** One end of a runtime-state transfer: an instance's address and the token its endpoints require. */
export interface StateTransferEnd {
  readonly host: string;
  readonly port: number;
  /** Sent as `authorization: Bearer <token>`; the instance checks it ({@link StateTransferOptions}). */
  readonly token: string;
}

/** Options of {@link transferState}. */
export interface StateTransferOptions {
  /** The running instance whose runtime state is exported. */
  from: StateTransferEnd;
  /** The new instance that imports it before it serves. */
  to: StateTransferEnd;
  /** `GET` path on `from` answering the state as a stream (the spec's `stateTransfer.export`). */
  exportPath: string;
  /** `POST` path on `to` taking that stream as its body (the spec's `stateTransfer.import`). */
  importPath: string;
  /** The whole transfer must finish within this, ms. @default 10000 */
  timeoutMs?: number;
  /** More bytes than this abort the transfer (the import sees its body cut). @default 268435456 (256 MiB) */
  maxBytes?: number;
}

/** What a transfer moved. */
export interface StateTransferResult {
  bytes: number;
  ms: number;
  /** The import endpoint's answer (its JSON body, or its text), for the decision record. */
  importReply: unknown;
}

/** Counts the bytes that pass and fails the stream past `max`. */
class ByteLimit extends Transform {
  bytes = 0;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) cb(new Error(`the export exceeded maxBytes (${this.max} bytes)`));
    else cb(null, chunk);
  }
}

const url = (e: StateTransferEnd, path: string): string =>
  `http://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}${path}`;

/**
 * Runtime-state transfer (seed 001's State Transfer Module, at the application level): streams
 * `GET from/exportPath` into `POST to/importPath`. Streamed with back-pressure — memory stays bounded by
 * the stream buffers whatever the state's size —, authenticated by each instance's bearer token, bounded
 * by `maxBytes`, timed and cut off after `timeoutMs`. Thrown: `UNDERSTUDY_ERR_STATE_TRANSFER` with the
 * step that failed (`export`, `import`, `limit`, `timeout`) in `details.step`.
 */
export async function transferState(o: StateTransferOptions): Promise<StateTransferResult> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const maxBytes = o.maxBytes ?? 256 * 1024 * 1024;
  for (const [field, p] of [
    ['exportPath', o.exportPath],
    ['importPath', o.importPath],
  ] as const)
    if (typeof p !== 'string' || !p.startsWith('/'))
      throw new UnderstudyError(
        ErrorCode.StateTransfer,
        `state transfer ${field} must be a path starting with /`,
        {
          details: { step: 'options', field },
        },
      );
  const t0 = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  const fail = (step: string, why: string, cause?: unknown): UnderstudyError =>
    new UnderstudyError(
      ErrorCode.StateTransfer,
      `state transfer ${o.from.host}:${o.from.port}${o.exportPath} → ${o.to.host}:${o.to.port}${o.importPath}: ${signal.aborted ? `not done within ${timeoutMs} ms` : why}`,
      { cause, details: { step: signal.aborted ? 'timeout' : step } },
    );
  let exp;
  try {
    exp = await request(url(o.from, o.exportPath), {
      method: 'GET',
      headers: { authorization: `Bearer ${o.from.token}` },
      signal,
    });
  } catch (err) {
    throw fail('export', `export unreachable (${(err as Error).message})`, err);
  }
  if (exp.statusCode !== 200) {
    const text = await exp.body.text().catch(() => '');
    throw fail('export', `export answered ${exp.statusCode} ${text.slice(0, 200)}`);
  }
  const limit = new ByteLimit(maxBytes);
  let limitError: Error | undefined;
  limit.on('error', (err) => (limitError = err));
  exp.body.on('error', (err) => limit.destroy(err));
  exp.body.pipe(limit);
  let imp;
  try {
    imp = await request(url(o.to, o.importPath), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${o.to.token}`,
        'content-type': exp.headers['content-type'] ?? 'application/octet-stream',
      },
      body: limit,
      signal,
    });
  } catch (err) {
    exp.body.destroy();
    if (limitError) throw fail('limit', limitError.message, limitError);
    throw fail('import', `import failed (${(err as Error).message})`, err);
  }
  const text = await imp.body.text().catch(() => '');
  if (limitError) throw fail('limit', limitError.message, limitError);
  if (imp.statusCode < 200 || imp.statusCode > 299)
    throw fail('import', `import answered ${imp.statusCode} ${text.slice(0, 200)}`);
  let importReply: unknown = text;
  try {
    importReply = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { bytes: limit.bytes, ms: Number((performance.now() - t0).toFixed(1)), importReply };
}
