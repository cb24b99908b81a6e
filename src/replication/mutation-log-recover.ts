// Opening the durable mutation log (mutation-log-durable.ts): the scan of its directory — the stream
// name, the genesis marker, the segments in seq order with a torn tail cut off and the segments before a
// gap dropped. The log keeps what this finds and continues from there.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  FLAG_AFTER_GAP,
  FLAG_AFTER_SKIP,
  SEGMENT_HEADER_BYTES,
  parseSegmentName,
  scanSegment,
  segmentHeader,
} from './mutation-log-segment.js';
import { closeAsync, fsyncAsync, ftruncateAsync, openAsync, type MutationLogIo } from './mutation-log-io.js';

/** The marker file of a log that began with its service's state (`DurableMutationLog.markGenesis`). */
export const GENESIS_FILE = 'genesis';

/** One segment file of the log, as the log tracks it. */
export interface LogSegment {
  path: string;
  name: string;
  /** Lower bound of the sequence numbers it holds (its file name). */
  firstSeq: number;
  lastSeq: number | undefined;
  lastAt: number | undefined;
  bytes: number;
}

/** What {@link scanLogDir} found. */
export interface LogDirScan {
  /** The log's stream name (`<dir>/stream`; a new one was written when there was none). */
  stream: string;
  /** Whether the directory already held a log (it had a stream file). */
  existing: boolean;
  /** Whether the genesis marker is there. */
  fromGenesis: boolean;
  /** The segments kept, in seq order. */
  segments: LogSegment[];
  /** Ranges `(after, to]` of seqs between segments that hold no mutation (`FLAG_AFTER_SKIP`), ascending. */
  skips: Array<[after: number, to: number]>;
  /** Mutations in each segment kept, by path. */
  records: Map<string, number>;
  /** A torn last record that was cut off. */
  torn?: { file: string; offset: number; bytes: number };
  /** Segments deleted because a later one starts after a gap. */
  droppedBeforeGap: number;
}

/**
 * Scans the log directory `dir` (created owner-only if missing): reads or writes its stream name, reads
 * every segment in seq order, cuts a torn tail off the last one (rewriting a torn header with `io`), and
 * deletes the segments before a gap (a segment flagged `FLAG_AFTER_GAP`, or one that starts beyond the
 * previous one's last seq + 1 without `FLAG_AFTER_SKIP`). Throws `UNDERSTUDY_ERR_MUTATION_LOG_CORRUPT`
 * for any other damage ({@link scanSegment}).
 */
export async function scanLogDir(dir: string, io: MutationLogIo): Promise<LogDirScan> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const streamFile = join(dir, 'stream');
  const found = (await readFile(streamFile, 'utf8').catch(() => '')).trim();
  let stream = found;
  if (!/^[\w-]{8,64}$/.test(found)) {
    stream = randomUUID();
    await writeFile(streamFile, `${stream}\n`, { mode: 0o600 });
  }
  const fromGenesis = await readFile(join(dir, GENESIS_FILE)).then(
    () => true,
    () => false,
  );
  const names = (await readdir(dir))
    .map((n) => ({ n, first: parseSegmentName(n) }))
    .filter((x): x is { n: string; first: number } => x.first !== undefined)
    .sort((a, b) => a.first - b.first);
  let torn: LogDirScan['torn'];
  let droppedBeforeGap = 0;
  let segments: LogSegment[] = [];
  let skips: Array<[number, number]> = [];
  const counts = new Map<string, number>();
  for (const [i, { n, first }] of names.entries()) {
    const path = join(dir, n);
    const isLast = i === names.length - 1;
    const buf = await readFile(path);
    const prev = segments.at(-1);
    const prevLast = prev ? (prev.lastSeq ?? prev.firstSeq - 1) : undefined;
    const scan = scanSegment(buf, path, {
      isLast,
      keepRecords: false,
      afterSeq: Math.max(prevLast ?? -Infinity, first - 1),
    });
    if (scan.tornBytes > 0) {
      torn = { file: path, offset: scan.validBytes, bytes: scan.tornBytes };
      await truncateFile(path, scan.validBytes, io);
    }
    const seg: LogSegment = {
      path,
      name: n,
      firstSeq: first,
      lastSeq: scan.lastSeq,
      lastAt: scan.lastAt,
      bytes: Math.max(scan.validBytes, SEGMENT_HEADER_BYTES),
    };
    // A segment after a gap (its flag, or its first sequence number beyond the previous segment's
    // last + 1 without the skip flag) makes everything before it useless for replay.
    const skipped = (scan.flags & FLAG_AFTER_SKIP) !== 0;
    if (
      prevLast !== undefined &&
      ((scan.flags & FLAG_AFTER_GAP) !== 0 || (first > prevLast + 1 && !skipped))
    ) {
      for (const old of segments) await unlink(old.path);
      droppedBeforeGap += segments.length;
      segments = [];
      skips = [];
    } else if (prevLast !== undefined && skipped && first > prevLast + 1) skips.push([prevLast, first - 1]);
    segments.push(seg);
    counts.set(path, scan.count);
  }
  return {
    stream,
    existing: found !== '',
    fromGenesis,
    segments,
    skips,
    records: counts,
    ...(torn === undefined ? {} : { torn }),
    droppedBeforeGap,
  };
}

/** Cuts a torn tail off; a segment whose header was torn gets a fresh header. */
async function truncateFile(path: string, validBytes: number, io: MutationLogIo): Promise<void> {
  const fd = await openAsync(path, 'r+');
  try {
    await ftruncateAsync(fd, validBytes);
    if (validBytes < SEGMENT_HEADER_BYTES) {
      await ftruncateAsync(fd, 0);
      await io.write(fd, segmentHeader(0));
    }
    await fsyncAsync(fd);
  } finally {
    await closeAsync(fd);
  }
}
