import { crc32 } from 'node:zlib';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { Mutation } from './mutation.js';

/**
 * On-disk format of the durable mutation log ({@link DurableMutationLog}): a directory of segment
 * files `<firstSeq, 20 digits>.seg`. A segment starts with a 16-byte header — the magic `USMLOG01`, one
 * flags byte, 7 zero bytes — followed by records:
 *
 * ```
 * u32 BE payload length | u32 BE crc32(payload) | payload
 * payload = f64 seq | f64 epoch | f64 at | u32 metaLength | meta (JSON: the other fields) | body
 * ```
 */
export const SEGMENT_MAGIC = Buffer.from('USMLOG01', 'latin1');
/** Bytes of a segment header. */
export const SEGMENT_HEADER_BYTES = 16;
/** Header flag: the segment does not continue the one before it (a write failed; mutations were lost from the log). */
export const FLAG_AFTER_GAP = 1;
/**
 * Header flag: the segment continues the one before it after a range of sequence numbers that hold no
 * mutation (a restarted log moved past every seq an earlier process may have handed out without making
 * it durable, so that no seq is ever given to two mutations). Older segments stay replayable.
 */
export const FLAG_AFTER_SKIP = 2;
const RECORD_HEADER_BYTES = 8;
const FIXED_PAYLOAD_BYTES = 28;
/** A record larger than this is damage, not a mutation (the router buffers far less). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

/** File name of the segment whose first record has sequence number `firstSeq`. */
export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}.seg`;
}

/** The first sequence number encoded in a segment's file name, or undefined for another file. */
export function parseSegmentName(name: string): number | undefined {
  const m = /^(\d{20})\.seg$/.exec(name);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** A segment header with the given flags. */
export function segmentHeader(flags: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b[8] = flags;
  return b;
}

/** Encodes one mutation as a framed, checksummed record. */
export function encodeRecord(m: Mutation): Buffer {
  const { seq, epoch, at, body, ...rest } = m;
  const meta = Buffer.from(JSON.stringify(rest), 'utf8');
  const payloadLength = FIXED_PAYLOAD_BYTES + meta.length + body.length;
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payloadLength);
  out.writeUInt32BE(payloadLength, 0);
  out.writeDoubleBE(seq, 8);
  out.writeDoubleBE(epoch, 16);
  out.writeDoubleBE(at, 24);
  out.writeUInt32BE(meta.length, 32);
  meta.copy(out, 36);
  body.copy(out, 36 + meta.length);
  out.writeUInt32BE(crc32(out.subarray(RECORD_HEADER_BYTES)), 4);
  return out;
}

function decodePayload(p: Buffer): Mutation | undefined {
  const metaLength = p.readUInt32BE(24);
  if (FIXED_PAYLOAD_BYTES + metaLength > p.length) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(p.subarray(FIXED_PAYLOAD_BYTES, FIXED_PAYLOAD_BYTES + metaLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof meta !== 'object' || meta === null) return undefined;
  return {
    ...(meta as Omit<Mutation, 'seq' | 'epoch' | 'at' | 'body'>),
    seq: p.readDoubleBE(0),
    epoch: p.readDoubleBE(8),
    at: p.readDoubleBE(16),
    // A copy: the segment buffer is not kept alive by one mutation.
    body: Buffer.from(p.subarray(FIXED_PAYLOAD_BYTES + metaLength)),
  };
}

/** What a scan of one segment found. */
export interface SegmentScan {
  flags: number;
  /** The mutations, in order (only when asked for). */
  records: Mutation[];
  /** Number of valid records. */
  count: number;
  /** Sequence number of the last valid record (undefined: none). */
  lastSeq: number | undefined;
  /** `at` of the last valid record. */
  lastAt: number | undefined;
  /** Bytes of the header and the valid records: where the next record goes. */
  validBytes: number;
  /** Bytes after the valid records that are a torn (partly written) last record: cut off on open. */
  tornBytes: number;
}

function corrupt(file: string, offset: number, what: string): UnderstudyError {
  return new UnderstudyError(
    ErrorCode.MutationLogCorrupt,
    `mutation log segment ${file} is corrupted at byte offset ${offset}: ${what}; it is not a torn last record, so the log is refused (move the segment away to start the log after it)`,
    { details: { file, offset } },
  );
}

function allZero(b: Buffer): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/**
 * Scans a segment's bytes. In the last segment (`isLast`), a record cut short by the end of the file,
 * a last record whose checksum fails, or zeros to the end are a torn tail (a crash during a write):
 * reported in `tornBytes`. Anything else that is not a valid record — in the middle of the last segment
 * or anywhere in an earlier one — throws {@link ErrorCode.MutationLogCorrupt} naming the file and offset.
 * Sequence numbers must increase and be greater than `afterSeq`.
 */
export function scanSegment(
  buf: Buffer,
  file: string,
  options: { isLast: boolean; keepRecords: boolean; afterSeq?: number },
): SegmentScan {
  const { isLast } = options;
  const scan: SegmentScan = {
    flags: 0,
    records: [],
    count: 0,
    lastSeq: undefined,
    lastAt: undefined,
    validBytes: 0,
    tornBytes: 0,
  };
  if (buf.length < SEGMENT_HEADER_BYTES) {
    if (!isLast) throw corrupt(file, 0, `only ${buf.length} bytes, shorter than a segment header`);
    // Created but its header not (fully) written: the whole file is a torn tail.
    if (!SEGMENT_MAGIC.subarray(0, Math.min(buf.length, 8)).equals(buf.subarray(0, 8)) && !allZero(buf))
      throw corrupt(file, 0, 'not a mutation log segment (bad magic)');
    scan.tornBytes = buf.length;
    return scan;
  }
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC))
    throw corrupt(file, 0, 'not a mutation log segment (bad magic)');
  scan.flags = buf[8] ?? 0;
  scan.validBytes = SEGMENT_HEADER_BYTES;
  let off = SEGMENT_HEADER_BYTES;
  let prev = options.afterSeq ?? -Infinity;
  const torn = (): SegmentScan => {
    scan.tornBytes = buf.length - off;
    return scan;
  };
  while (off < buf.length) {
    const remaining = buf.length - off;
    if (remaining < RECORD_HEADER_BYTES) {
      if (isLast) return torn();
      throw corrupt(file, off, `${remaining} stray bytes after the last record`);
    }
    const length = buf.readUInt32BE(off);
    if (length < FIXED_PAYLOAD_BYTES || length > MAX_RECORD_BYTES) {
      if (isLast && allZero(buf.subarray(off))) return torn();
      throw corrupt(file, off, `impossible record length ${length}`);
    }
    const end = off + RECORD_HEADER_BYTES + length;
    if (end > buf.length) {
      if (isLast) return torn();
      throw corrupt(file, off, `record of ${length} bytes runs past the end of the segment`);
    }
    const payload = buf.subarray(off + RECORD_HEADER_BYTES, end);
    if (crc32(payload) !== buf.readUInt32BE(off + 4)) {
      if (isLast && end === buf.length) return torn();
      throw corrupt(file, off, 'checksum mismatch');
    }
    const m = decodePayload(payload);
    if (!m) throw corrupt(file, off, 'record does not decode');
    if (!(m.seq > prev)) throw corrupt(file, off, `sequence ${m.seq} does not follow ${prev}`);
    prev = m.seq;
    if (options.keepRecords) scan.records.push(m);
    scan.count++;
    scan.lastSeq = m.seq;
    scan.lastAt = m.at;
    off = end;
    scan.validBytes = off;
  }
  scan.validBytes = off;
  return scan;
}
