#!/usr/bin/env node
// @ts-check
// Example workload for Understudy: a small HTTP key-value service.
//   PUT/GET/DELETE /kv/:key   GET /stats   GET /healthz
// Every acknowledged write is appended to a log in the state directory and durable before the
// reply (group commit: writes arriving together share one write to the log, opened O_DSYNC so that
// write returns once they are on disk). At start the store is rebuilt
// from the log; a torn last record (crash mid-write) is detected by its CRC and cut off.
// A request carrying `x-request-id` is applied at most once: a retry of the same id is acknowledged
// again without being applied twice. A write tagged `x-understudy-epoch` older than the newest epoch
// this instance has seen is refused with 409 (fencing: a deposed primary's traffic is not applied).
// `POST /admin/reload` rebuilds the store from the log (the promotion hook of a warm echo, whose
// files were synced underneath it).
// Pipelined order (echo.mutations.order: pipelined, docs/failover.md): a write carrying
// `x-understudy-seq` runs only once every earlier seq was consumed (../lib/seq-gate.mjs); every seq is
// consumed exactly once, by one record in the log (a put, a delete, or a skip for a request that changed
// nothing), queued in seq order for the next group commit, so the log's last seq is the position this
// instance reports (`GET /stats` → appliedSeq) and resumes from after a restart.
// Each acknowledged PUT or DELETE (serial order) answers with `x-kv-instance` (the instance's id,
// UNDERSTUDY_INSTANCE, else its state directory's name) and `x-kv-epoch` (the epoch it was applied
// under, 0 when untagged; a duplicate of an applied x-request-id: the newest epoch this instance has seen):
// a client can count which instance acknowledged its writes under which epoch.
// Batched replication (echo.mutations.batch): `POST /_understudy/batch` takes many sequenced writes at
// once (../lib/seq-gate.mjs decodeBatch/applyBatch); each is applied as a single request would be.
//
// `GET /stats` also says what the log is doing now: `committing`, the records of the group commit being
// written (0 when none), and `queued`, the records waiting for the next one.
//
// Usage: node server.mjs --port 8080 --state ./state [--host 127.0.0.1]
// Test-only: KV_TEST_HOLD_COMMIT_MS=<ms> holds every group commit written off the event loop for that
// long before its write is issued (default 0: not held, no timer), so that a test can make a reload, a
// shutdown or a batch come while a commit is being written (examples/kv/server.test.ts). Never in production.
import { createServer } from 'node:http';
import {
  closeSync,
  constants,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  write,
  writeSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { SEQ_HEADERS, SeqGate, applyBatch, decodeBatch, readSequence } from '../lib/seq-gate.mjs';

const MAX_BODY = 1024 * 1024;
/** Where the router sends batches of mutations (`echo.mutations.batch.path`), and their size limit. */
const BATCH_PATH = '/_understudy/batch';
const MAX_BATCH = 64 * 1024 * 1024;
/**
 * How the log is opened: appending, and `O_DSYNC`, so each write returns once its records are durable
 * (one trip to the thread pool per group commit instead of a write and an fdatasync).
 */
const LOG_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC;

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {Record<string, string>} */
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('--')) continue;
    out[a.slice(2)] = argv[i + 1] ?? '';
    i++;
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const port = Number(args.port ?? process.env.PORT ?? 0);
const host = args.host ?? '127.0.0.1';
const stateDir = args.state ?? process.env.UNDERSTUDY_STATE_DIR ?? './state';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`kv: --port must be an integer 0-65535, got ${JSON.stringify(args.port)}\n`);
  process.exit(2);
}
const holdRaw = process.env.KV_TEST_HOLD_COMMIT_MS ?? '';
if (holdRaw !== '' && !/^\d{1,6}$/.test(holdRaw)) {
  process.stderr.write(
    `kv: KV_TEST_HOLD_COMMIT_MS must be a whole number of milliseconds (0-999999), got ${JSON.stringify(holdRaw)}\n`,
  );
  process.exit(2);
}
/** Test-only (see the header): how long each asynchronous group commit is held before its write. */
const HOLD_COMMIT_MS = Number(holdRaw);
mkdirSync(stateDir, { recursive: true });
const logPath = join(stateDir, 'kv.log');

/** @type {Map<string, string>} */
const data = new Map();
/** @type {Set<string>} */
const appliedIds = new Set();
let seq = 0;
let recovered = 0;
let truncatedBytes = 0;
let maxEpoch = 0;
// Highest `x-understudy-seq` applied: what Understudy asks a hot echo (`echo.mutations.appliedSeq`) to
// resume it by replay. Pipelined writes keep it in their records (`useq`), so it survives a restart of
// this process; serial replays only in memory (their records stay byte-equal to the primary's).
let understudySeq = 0;
/**
 * Pipelined position from the log: the stream, the last seq consumed in it, recent outcomes.
 * @type {{ stream: string, seq: number, recent: Array<[number, number | 'skip']> }}
 */
let position = { stream: '', seq: 0, recent: [] };
/** Writes queued for the next group commit (key → value, or undefined for a delete): what the next
 * sequenced write must see, although readers see a value only once it is durable. */
/** @type {Map<string, {value: string | undefined, rec: object}>} */
const unflushed = new Map();

// Record: <crc32 hex 8>' '<json>'\n'
function recover() {
  let buf;
  try {
    buf = readFileSync(logPath);
  } catch {
    return 0;
  }
  let offset = 0;
  let good = 0;
  while (offset < buf.length) {
    const nl = buf.indexOf(10, offset);
    if (nl < 0) break;
    const line = buf.subarray(offset, nl);
    const crc = line.subarray(0, 8).toString('latin1');
    const body = line.subarray(9);
    if (line.length < 10 || crc32(body).toString(16).padStart(8, '0') !== crc) break;
    /** @type {KvRecord} */
    const rec = JSON.parse(body.toString('utf8'));
    applyRecord(rec);
    trackPosition(rec);
    recovered++;
    offset = nl + 1;
    good = offset;
  }
  truncatedBytes = buf.length - good;
  return good;
}

/**
 * One log record. `useq`/`stream`: the understudy seq it consumed (pipelined order) and its stream.
 * Fields left undefined are not written (JSON), so every record keeps this key order.
 * @typedef {{seq:number, op:'put'|'delete'|'skip', key?:string|undefined, value?:string|undefined,
 *   id?:string|undefined, epoch?:number|undefined, useq?:number|undefined, stream?:string|undefined}} KvRecord
 */

/** Applies a durable record to the store (at recovery, and once a group commit is on disk). @param {KvRecord} rec */
function applyRecord(rec) {
  if (rec.seq > seq) seq = rec.seq;
  if (rec.epoch && rec.epoch > maxEpoch) maxEpoch = rec.epoch;
  if (rec.useq && rec.useq > understudySeq) understudySeq = rec.useq;
  if (rec.id) appliedIds.add(rec.id);
  if (rec.op === 'put') data.set(rec.key ?? '', rec.value ?? '');
  else if (rec.op === 'delete') data.delete(rec.key ?? '');
}

/**
 * Recovery only: the pipelined position the log ends at, for {@link gateFromLog} (while running, the
 * gate keeps it). @param {KvRecord} rec
 */
function trackPosition(rec) {
  if (rec.useq === undefined) return;
  if (rec.stream !== position.stream) position = { stream: rec.stream ?? '', seq: 0, recent: [] };
  position.seq = Math.max(position.seq, rec.useq);
  // A skip record means "consumed without effect" (rejected here, or a skip entry): which one is kept
  // out of the record so the primary's log and its echo's are the same bytes.
  position.recent.push([rec.useq, rec.op === 'skip' ? 'skip' : 200]);
  if (position.recent.length > 8192) position.recent = position.recent.slice(-4096);
}

/** The gate of pipelined order, positioned where the log ends. */
function gateFromLog() {
  return new SeqGate({
    stream: position.stream,
    appliedSeq: position.seq,
    maxEpoch,
    recent: position.recent,
  });
}

let validBytes = recover();
let gate = gateFromLog();
let fd = openSync(logPath, LOG_FLAGS);
if (truncatedBytes > 0) ftruncateSync(fd, validBytes);
let logBytes = validBytes;

/**
 * A group commit: the lines of the records queued for one write to the log, the records (applied to
 * the store once durable), and one promise for all of them.
 * @typedef {{ lines: string, recs: KvRecord[], durable: Promise<void>, resolve: () => void }} Group
 */

/** @returns {Group} */
function newGroup() {
  /** @type {() => void} */
  let resolve = () => undefined;
  /** @type {Promise<void>} */
  const durable = new Promise((r) => {
    resolve = r;
  });
  return { lines: '', recs: [], durable, resolve };
}

/** The group commit records are queued in (written by the next flush). */
let filling = newGroup();
/** The group commit being written, if any (one at a time, so groups reach the log in order). */
/** @type {Group | undefined} */
let writing;
let flushScheduled = false;
const stats = {
  reads: 0,
  writes: 0,
  deletes: 0,
  duplicates: 0,
  /** Group commits written (each one durable write to the log). */
  fsyncs: 0,
  /** Of which written on the event loop, for a batch while nothing else was being written. */
  inlineCommits: 0,
  batches: 0,
  startedAt: Date.now(),
};

/** Writes the queued records durably (`O_DSYNC`, off the event loop), then acknowledges them. */
function flush() {
  flushScheduled = false;
  if (writing || filling.recs.length === 0) return;
  const group = filling;
  filling = newGroup();
  writing = group;
  const buf = Buffer.from(group.lines, 'utf8');
  /** The group is on disk. */
  const done = () => {
    stats.fsyncs++;
    logBytes += buf.length;
    settle(group);
    writing = undefined;
    if (filling.recs.length > 0) flush();
  };
  if (HOLD_COMMIT_MS > 0) setTimeout(writeAll, HOLD_COMMIT_MS, buf, 0, done);
  else writeAll(buf, 0, done);
}

/** A group commit is on disk: apply its records and answer everyone waiting for it. @param {Group} group */
function settle(group) {
  for (const rec of group.recs) {
    applyRecord(rec);
    if (rec.key !== undefined && unflushed.get(rec.key)?.rec === rec) unflushed.delete(rec.key);
  }
  group.resolve();
}

/**
 * @param {Buffer} buf
 * @param {number} offset
 * @param {() => void} then
 */
function writeAll(buf, offset, then) {
  if (offset >= buf.length) return then();
  write(fd, buf, offset, buf.length - offset, null, (err, n) =>
    err ? fatal(err) : writeAll(buf, offset + n, then),
  );
}

/** @param {Error} err */
function fatal(err) {
  process.stderr.write(`kv: cannot write the log: ${err.message}\n`);
  process.exit(1);
}

/**
 * Writes the queued records now, on the event loop (`O_DSYNC`: durable when the write returns), and
 * acknowledges them. Only while no group commit is being written (the log's order is the queue's):
 * a batch's commit when nothing else is, and shutdown and reload once {@link idle}.
 */
function flushSync() {
  const group = filling;
  filling = newGroup();
  if (group.recs.length === 0) return;
  const buf = Buffer.from(group.lines, 'utf8');
  try {
    let written = 0;
    while (written < buf.length) written += writeSync(fd, buf, written, buf.length - written);
  } catch (err) {
    fatal(/** @type {Error} */ (err));
  }
  stats.fsyncs++;
  logBytes += buf.length;
  settle(group);
}

/** Resolves once no group commit is being written (a synchronous flush must not overtake one). */
async function idle() {
  while (writing) await writing.durable;
}

/**
 * Queues a record for the next group commit and returns its sequence number; {@link durable} resolves
 * once it is on disk (and applied to the store). The record is visible to {@link exists} at once, and
 * its id claimed at once (a retry racing this write is a duplicate), in call order.
 * @param {'put' | 'delete' | 'skip'} op
 * @param {string | undefined} key
 * @param {string | undefined} value
 * @param {string | undefined} id
 * @param {number} epoch 0 when untagged
 * @param {import('../lib/seq-gate.mjs').Sequenced} [s] the seq it consumes (pipelined order)
 * @returns {number}
 */
function commit(op, key, value, id, epoch, s) {
  /** @type {KvRecord} */
  const rec = {
    seq: ++seq,
    op,
    key,
    value,
    id: id || undefined,
    epoch: epoch || undefined,
    useq: s?.seq,
    stream: s?.stream,
  };
  if (op !== 'skip' && key !== undefined)
    unflushed.set(key, { value: op === 'put' ? (value ?? '') : undefined, rec });
  if (id) appliedIds.add(id);
  const json = JSON.stringify(rec);
  // crc32 of a string is that of its UTF-8 bytes: the line is written as UTF-8.
  filling.lines += crc32(json).toString(16).padStart(8, '0') + ' ' + json + '\n';
  filling.recs.push(rec);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
  return rec.seq;
}

/** Resolves once every record queued so far is durable (and applied). */
function durable() {
  if (filling.recs.length > 0) return filling.durable;
  return writing ? writing.durable : Promise.resolve();
}

/** Whether a key exists once every queued write is applied. @param {string} key */
function exists(key) {
  const queued = unflushed.get(key);
  return queued ? queued.value !== undefined : data.has(key);
}

/** Who acknowledged a write, and under which epoch (see the header comment). */
const INSTANCE = process.env.UNDERSTUDY_INSTANCE || basename(resolve(stateDir));
/** @param {number} epoch */
function ackHeaders(epoch) {
  return { 'x-kv-instance': INSTANCE, 'x-kv-epoch': String(epoch) };
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
function json(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** @param {import('node:http').IncomingMessage} req */
function readBody(req) {
  return readRaw(req, MAX_BODY).then((b) => b.toString('utf8'));
}

/**
 * @param {import('node:http').IncomingMessage} req
 * @param {number} max
 * @returns {Promise<Buffer>}
 */
function readRaw(req, max) {
  return new Promise((resolve, reject) => {
    /** @type {Buffer[]} */
    const chunks = [];
    let size = 0;
    req.on('data', (/** @type {Buffer} */ c) => {
      size += c.length;
      if (size > max) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    const status = typeof err?.status === 'number' ? err.status : 500;
    if (!res.headersSent) json(res, status, { error: String(err?.message ?? err) });
    else res.destroy();
  });
});

/** A request target that `new URL` leaves as it is (plain segments of word characters and dashes). */
const PLAIN_PATH = /^(?:\/[\w-]+)+$/;

/** The pathname of a request target (most are plain: no URL to parse). @param {string} target */
function pathnameOf(target) {
  return PLAIN_PATH.test(target) ? target : new URL(target, 'http://kv').pathname;
}

/**
 * The key of `/kv/:key`, decoded; undefined for another path or a key that does not decode (`%E0%A4%A`):
 * answered 404, the same on every instance.
 * @param {string} pathname
 */
function keyOf(pathname) {
  const m = /^\/kv\/([^/]+)$/.exec(pathname);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1] ?? '');
  } catch {
    return undefined;
  }
}

/**
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
async function handle(req, res) {
  const pathname = pathnameOf(req.url ?? '/');
  if (pathname === '/healthz') return json(res, 200, { ok: true });
  if (pathname === '/stats' && req.method === 'GET') {
    return json(res, 200, {
      keys: data.size,
      seq,
      understudySeq,
      maxEpoch: Math.max(maxEpoch, gate.maxEpoch),
      appliedSeq: gate.appliedSeq,
      stream: gate.stream,
      logBytes,
      committing: writing?.recs.length ?? 0,
      queued: filling.recs.length,
      recovered,
      truncatedBytes,
      role: process.env.UNDERSTUDY_ROLE ?? 'primary',
      uptimeMs: Date.now() - stats.startedAt,
      ...stats,
    });
  }
  if (pathname === '/admin/reload' && req.method === 'POST') {
    await idle();
    flushSync();
    closeSync(fd);
    data.clear();
    appliedIds.clear();
    seq = 0;
    understudySeq = 0;
    recovered = 0;
    position = { stream: '', seq: 0, recent: [] };
    unflushed.clear();
    validBytes = recover();
    gate = gateFromLog();
    fd = openSync(logPath, LOG_FLAGS);
    if (truncatedBytes > 0) ftruncateSync(fd, validBytes);
    logBytes = validBytes;
    return json(res, 200, { ok: true, keys: data.size, seq });
  }
  if (pathname === BATCH_PATH && req.method === 'POST') return handleBatch(req, res);
  const sequenced = req.method === 'GET' ? undefined : readSequence(req.headers);
  if (sequenced) return handleSequenced(req, res, pathname, sequenced);
  const m = /^\/kv\/([^/]+)$/.exec(pathname);
  if (!m) return json(res, 404, { error: `no route ${req.method} ${pathname}` });
  const key = decodeURIComponent(m[1] ?? '');
  const id = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined;
  const epochHeader = req.headers['x-understudy-epoch'];
  const epoch = typeof epochHeader === 'string' ? Number(epochHeader) : 0;
  // Serial order: a replay's seq (pipelined writes are handled above).
  const useqHeader = req.headers['x-understudy-seq'];
  const useq = typeof useqHeader === 'string' && /^\d+$/.test(useqHeader) ? Number(useqHeader) : 0;
  if (req.method !== 'GET' && epoch > 0) {
    if (epoch < maxEpoch)
      return json(res, 409, { error: `stale epoch ${epoch}: this instance has seen epoch ${maxEpoch}` });
    maxEpoch = epoch;
  }
  switch (req.method) {
    case 'GET': {
      stats.reads++;
      const value = data.get(key);
      if (value === undefined) return json(res, 404, { error: `no key ${key}` });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-kv-seq': String(seq) });
      return res.end(value);
    }
    case 'PUT':
    case 'DELETE': {
      const put = req.method === 'PUT';
      const value = put ? await readBody(req) : undefined;
      if (id && appliedIds.has(id)) {
        stats.duplicates++;
        // The first write of this id may still be on its way to disk: answer once it is durable.
        await durable();
        understudySeq = Math.max(understudySeq, useq);
        // Acknowledged under the epoch this instance serves under now (its newest seen), not the request's.
        return json(res, 200, { ok: true, key, duplicate: true }, ackHeaders(Math.max(maxEpoch, epoch)));
      }
      const existed = put || data.has(key);
      const s = commit(put ? 'put' : 'delete', key, value, id, epoch);
      await durable();
      understudySeq = Math.max(understudySeq, useq);
      if (put) stats.writes++;
      else stats.deletes++;
      return json(res, existed ? 200 : 404, { ok: existed, key, seq: s }, existed ? ackHeaders(epoch) : {});
    }
    default:
      res.setHeader('allow', 'GET, PUT, DELETE');
      return json(res, 405, { error: `method ${req.method} not allowed on /kv/:key` });
  }
}

/**
 * A write in pipelined order: reads its body, waits for its turn (only when an earlier seq is not
 * consumed yet), consumes the seq ({@link consume}) and answers once that is durable.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 * @param {string} pathname
 * @param {import('../lib/seq-gate.mjs').Sequenced} s
 */
async function handleSequenced(req, res, pathname, s) {
  // Read the body before taking the turn: the next seq must not wait for a slow client.
  const value = await readBody(req);
  const id = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined;
  const t = gate.tryEnter(s) ?? (await gate.enter(s));
  const a = consume(t, req.method ?? '', pathname, id, value, s);
  await durable();
  return json(res, a.status, a.body, a.headers);
}

/**
 * One sequenced write whose turn was decided (a single request or an entry of a batch): consumes its
 * seq with exactly one record, queued before the next seq may run, and says how to answer it — once
 * everything queued is durable ({@link durable}; a duplicate too: its first consumption may still be
 * on its way to disk). Synchronous: a batch queues all its entries in one go, for one group commit.
 * @param {import('../lib/seq-gate.mjs').Turn} t
 * @param {string} method
 * @param {string} pathname
 * @param {string | undefined} id
 * @param {string} value
 * @param {import('../lib/seq-gate.mjs').Sequenced} s
 * @returns {{ status: number, body: unknown, headers?: Record<string, string> }}
 */
function consume(t, method, pathname, id, value, s) {
  if (t.turn === 'duplicate') {
    stats.duplicates++;
    const st = typeof t.outcome === 'number' ? t.outcome : t.outcome === 'skip' ? 409 : 200;
    return {
      status: s.skip ? 200 : st,
      body: { ok: st < 300, duplicate: true, seq: s.seq, outcome: t.outcome },
      headers: { [SEQ_HEADERS.outcome]: String(t.outcome) },
    };
  }
  /** Consumes the seq without an effect (a skip record). @param {number | 'skip'} outcome */
  const skip = (outcome) => {
    commit('skip', undefined, undefined, undefined, 0, s);
    if (t.turn === 'run') gate.complete(s.seq, outcome);
  };
  if (t.turn === 'stale') {
    skip(409);
    return {
      status: 409,
      body: { error: `stale epoch ${s.epoch}: this instance has seen epoch ${t.maxEpoch}` },
      headers: { [SEQ_HEADERS.outcome]: '409' },
    };
  }
  if (s.skip) {
    skip('skip');
    return { status: 200, body: { ok: true, skipped: s.seq }, headers: { [SEQ_HEADERS.outcome]: 'skip' } };
  }
  const key = keyOf(pathname);
  if (key === undefined || (method !== 'PUT' && method !== 'DELETE')) {
    const st = key === undefined ? 404 : 405;
    skip(st);
    return { status: st, body: { error: `no route ${method} ${pathname}` } };
  }
  if (id && appliedIds.has(id)) {
    stats.duplicates++;
    skip(200);
    return { status: 200, body: { ok: true, key, duplicate: true } };
  }
  if (method === 'DELETE' && !exists(key)) {
    skip(404);
    return { status: 404, body: { ok: false, key } };
  }
  const written =
    method === 'PUT'
      ? commit('put', key, value, id, s.epoch, s)
      : commit('delete', key, undefined, id, s.epoch, s);
  gate.complete(s.seq, 200);
  if (method === 'PUT') stats.writes++;
  else stats.deletes++;
  return { status: 200, body: { ok: true, key, seq: written } };
}

/**
 * A batch of sequenced writes from the router (`echo.mutations.batch`, docs/failover.md): every entry
 * is consumed as a single request would be ({@link consume}) — at once when its turn is decided
 * ({@link SeqGate.tryEnter}, the usual case: the entries come in seq order), else once it comes — and
 * the batch is answered once everything it queued is durable: one group commit, one answer.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
async function handleBatch(req, res) {
  const batch = decodeBatch(await readRaw(req, MAX_BATCH));
  stats.batches++;
  const answer = await applyBatch(batch, (e) => {
    const s = readSequence(e.headers);
    if (!s) return 400;
    const pathname = pathnameOf(e.path);
    const id = e.headers['x-request-id'];
    const value = e.body.toString('utf8');
    const t = gate.tryEnter(s);
    if (t) return consume(t, e.method, pathname, id, value, s).status;
    return gate.enter(s).then((w) => consume(w, e.method, pathname, id, value, s).status);
  });
  // Nothing else is being written: this batch's group commit is written here, on the event loop (the
  // batch is answered only once it is durable anyway), sparing a hand-off to the thread pool and back —
  // about a tenth of an echo's CPU per write at batches of 7.
  if (writing === undefined && filling.recs.length > 0) {
    stats.inlineCommits++;
    flushSync();
  } else await durable();
  return json(res, 200, answer);
}

server.keepAliveTimeout = 65_000;
server.listen(port, host, () => {
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  process.stdout.write(
    `kv listening on http://${host}:${actual} state=${stateDir} recovered=${recovered} records\n`,
  );
});

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeIdleConnections();
  // A group commit under way is finished first: the synchronous flush must not land before it.
  await idle();
  flushSync();
  closeSync(fd);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
