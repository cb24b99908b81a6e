import { ByteReader, ByteWriter } from './byte-codec.js';
import { CONTENT_HASH_BYTES } from './content-hash.js';
import { UnderstudyError, ErrorCode } from '../errors/index.js';

/** Longest path (bytes) accepted in a frame. */
export const MAX_PATH_BYTES = 4096;

/** First frame of a connection, sent by the echo. */
export interface HelloTarget {
  readonly targetId: string;
  readonly nonce: Uint8Array;
  /** Lineage (source session) of the batches the echo applied; empty if none. */
  readonly lineage: string;
  /** Sequence number of the last batch the echo fully applied in that lineage. */
  readonly lastApplied: number;
}

/**
 * The primary's challenge: the echo's nonce and a fresh one of its own. Both derive the session keys;
 * nothing about the echo is decided before it has confirmed them.
 */
export interface HelloSource {
  readonly targetNonce: Uint8Array;
  readonly nonce: Uint8Array;
}

/** The echo's key confirmation (its first session frame): a hash of both hello payloads. */
export interface Confirm {
  readonly transcript: Uint8Array;
}

/** The primary's decision, once the echo confirmed: resume the lineage, or reset (the echo then sends its manifest). */
export interface Welcome {
  readonly lineage: string;
  readonly resume: boolean;
}

/** One entry of the echo's manifest (what its tree holds). */
export type ManifestEntry =
  | {
      readonly type: 'file';
      readonly path: string;
      readonly mode: number;
      readonly size: number;
      readonly hash: string;
    }
  | { readonly type: 'dir'; readonly path: string; readonly mode: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string };

/** One change of a batch. File content follows in the batch's data stream, in op order. */
export type BatchOp =
  | { readonly op: 'delete'; readonly path: string }
  | { readonly op: 'mkdir'; readonly path: string; readonly mode: number }
  | { readonly op: 'symlink'; readonly path: string; readonly target: string }
  | { readonly op: 'chmod'; readonly path: string; readonly mode: number }
  | {
      readonly op: 'file';
      readonly path: string;
      readonly mode: number;
      readonly mtimeMs: number;
      readonly base: string | null;
    };

const OP_CODES = { delete: 1, mkdir: 2, symlink: 3, chmod: 4, file: 5 } as const;

function bad(what: string): UnderstudyError {
  return new UnderstudyError(ErrorCode.SyncFrame, `malformed sync payload: ${what}`);
}

export function encodeHelloTarget(m: HelloTarget): Buffer {
  return new ByteWriter().str(m.targetId).lbytes(m.nonce).str(m.lineage).varint(m.lastApplied).finish();
}
export function decodeHelloTarget(b: Uint8Array): HelloTarget {
  const r = new ByteReader(b);
  const m = { targetId: r.str(256), nonce: r.lbytes(64), lineage: r.str(64), lastApplied: r.varint() };
  r.end();
  if (m.nonce.length !== 16) throw bad('nonce length');
  return m;
}
export function encodeHelloSource(m: HelloSource): Buffer {
  return new ByteWriter().lbytes(m.targetNonce).lbytes(m.nonce).finish();
}
export function decodeHelloSource(b: Uint8Array): HelloSource {
  const r = new ByteReader(b);
  const m = { targetNonce: r.lbytes(64), nonce: r.lbytes(64) };
  r.end();
  if (m.nonce.length !== 16) throw bad('nonce length');
  return m;
}
export function encodeConfirm(m: Confirm): Buffer {
  return new ByteWriter().lbytes(m.transcript).finish();
}
export function decodeConfirm(b: Uint8Array): Confirm {
  const r = new ByteReader(b);
  const m = { transcript: r.lbytes(64) };
  r.end();
  return m;
}
export function encodeWelcome(m: Welcome): Buffer {
  return new ByteWriter()
    .str(m.lineage)
    .u8(m.resume ? 1 : 0)
    .finish();
}
export function decodeWelcome(b: Uint8Array): Welcome {
  const r = new ByteReader(b);
  const m = { lineage: r.str(64), resume: r.u8() === 1 };
  r.end();
  return m;
}

/** Writes paths prefix-compressed against the previous one. */
class PathWriter {
  #prev = Buffer.alloc(0);
  constructor(private readonly w: ByteWriter) {}
  write(path: string): void {
    const b = Buffer.from(path, 'utf8');
    let shared = 0;
    const max = Math.min(b.length, this.#prev.length);
    while (shared < max && b[shared] === this.#prev[shared]) shared++;
    this.w.varint(shared).lbytes(b.subarray(shared));
    this.#prev = b;
  }
}
class PathReader {
  #prev = Buffer.alloc(0);
  constructor(private readonly r: ByteReader) {}
  read(): string {
    const shared = this.r.varint();
    if (shared > this.#prev.length) throw bad('path prefix');
    const suffix = this.r.lbytes(MAX_PATH_BYTES);
    const b = Buffer.concat([this.#prev.subarray(0, shared), suffix]);
    if (b.length > MAX_PATH_BYTES) throw bad('path too long');
    const s = b.toString('utf8');
    if (Buffer.byteLength(s) !== b.length) throw bad('path is not UTF-8');
    this.#prev = b;
    return s;
  }
}

export function encodeManifest(entries: readonly ManifestEntry[], last: boolean): Buffer {
  const w = new ByteWriter().u8(last ? 1 : 0).varint(entries.length);
  const pw = new PathWriter(w);
  for (const e of entries) {
    w.u8(e.type === 'file' ? 1 : e.type === 'dir' ? 2 : 3);
    pw.write(e.path);
    if (e.type === 'file') w.varint(e.mode).varint(e.size).bytes(Buffer.from(e.hash, 'hex'));
    else if (e.type === 'dir') w.varint(e.mode);
    else w.str(e.target);
  }
  return w.finish();
}
export function decodeManifest(b: Uint8Array): { entries: ManifestEntry[]; last: boolean } {
  const r = new ByteReader(b);
  const last = r.u8() === 1;
  const n = r.varint();
  const pr = new PathReader(r);
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.u8();
    const path = pr.read();
    if (t === 1)
      entries.push({
        type: 'file',
        path,
        mode: r.varint(),
        size: r.varint(),
        hash: Buffer.from(r.bytes(CONTENT_HASH_BYTES)).toString('hex'),
      });
    else if (t === 2) entries.push({ type: 'dir', path, mode: r.varint() });
    else if (t === 3) entries.push({ type: 'symlink', path, target: r.str(MAX_PATH_BYTES) });
    else throw bad(`manifest entry type ${t}`);
  }
  r.end();
  return { entries, last };
}

/** Encodes a batch's op list (the BATCH frame body before compression). */
export function encodeBatchOps(seq: number, ops: readonly BatchOp[]): Buffer {
  const w = new ByteWriter(64 + ops.length * 24).varint(seq).varint(ops.length);
  const pw = new PathWriter(w);
  for (const o of ops) {
    w.u8(OP_CODES[o.op]);
    pw.write(o.path);
    switch (o.op) {
      case 'delete':
        break;
      case 'mkdir':
      case 'chmod':
        w.varint(o.mode);
        break;
      case 'symlink':
        w.str(o.target);
        break;
      case 'file':
        w.varint(o.mode).varint(Math.max(0, Math.round(o.mtimeMs)));
        if (o.base === null) w.u8(0);
        else if (o.base === o.path) w.u8(1);
        else w.u8(2).str(o.base);
        break;
    }
  }
  return w.finish();
}
export function decodeBatchOps(b: Uint8Array, maxOps = 1_000_000): { seq: number; ops: BatchOp[] } {
  const r = new ByteReader(b);
  const seq = r.varint();
  const n = r.varint();
  if (n > maxOps) throw bad('too many ops');
  const pr = new PathReader(r);
  const ops: BatchOp[] = [];
  for (let i = 0; i < n; i++) {
    const code = r.u8();
    const path = pr.read();
    switch (code) {
      case OP_CODES.delete:
        ops.push({ op: 'delete', path });
        break;
      case OP_CODES.mkdir:
        ops.push({ op: 'mkdir', path, mode: r.varint() & 0o7777 });
        break;
      case OP_CODES.chmod:
        ops.push({ op: 'chmod', path, mode: r.varint() & 0o7777 });
        break;
      case OP_CODES.symlink:
        ops.push({ op: 'symlink', path, target: r.str(MAX_PATH_BYTES) });
        break;
      case OP_CODES.file: {
        const mode = r.varint() & 0o7777;
        const mtimeMs = r.varint();
        const bk = r.u8();
        const base = bk === 0 ? null : bk === 1 ? path : bk === 2 ? r.str(MAX_PATH_BYTES) : undefined;
        if (base === undefined) throw bad('file base kind');
        ops.push({ op: 'file', path, mode, mtimeMs, base });
        break;
      }
      default:
        throw bad(`op code ${code}`);
    }
  }
  r.end();
  return { seq, ops };
}

export function encodeSeq(seq: number): Buffer {
  return new ByteWriter(10).varint(seq).finish();
}
export function decodeSeq(b: Uint8Array): number {
  const r = new ByteReader(b);
  const s = r.varint();
  r.end();
  return s;
}
export function encodeError(seq: number, code: string, message: string): Buffer {
  return new ByteWriter().varint(seq).str(code).str(message.slice(0, 2000)).finish();
}
export function decodeError(b: Uint8Array): { seq: number; code: string; message: string } {
  const r = new ByteReader(b);
  const m = { seq: r.varint(), code: r.str(200), message: r.str(8000) };
  r.end();
  return m;
}
