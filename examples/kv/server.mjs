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
// under, 0 when untagged): a client can count which instance acknowledged its writes under which epoch.
// Batched replication (echo.mutations.batch): `POST /_understudy/batch` takes many sequenced writes at
// once (../lib/seq-gate.mjs decodeBatch/applyBatch); each is applied as a single request would be.
//
// Usage: node server.mjs --port 8080 --state ./state [--host 127.0.0.1]
import { createServer } from 'node:http';
import {
  closeSync,
  constants,
  fdatasyncSync,
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
    recovered++;
    offset = nl + 1;
    good = offset;
  }
  truncatedBytes = buf.length - good;
  return good;
}

/**
 * One log record. `useq`/`stream`: the understudy seq it consumed (pipelined order) and its stream.
 * @typedef {{seq:number, op:'put'|'delete'|'skip', key?:string, value?:string, id?:string, epoch?:number,
 *   useq?:number, stream?:string}} KvRecord
 */

/** @param {KvRecord} rec */
function applyRecord(rec) {
  seq = Math.max(seq, rec.seq);
  if (rec.epoch) maxEpoch = Math.max(maxEpoch, rec.epoch);
  if (rec.useq) understudySeq = Math.max(understudySeq, rec.useq);
  if (rec.id) appliedIds.add(rec.id);
  if (rec.useq !== undefined) {
    if (rec.stream !== position.stream) position = { stream: rec.stream ?? '', seq: 0, recent: [] };
    position.seq = Math.max(position.seq, rec.useq);
    // A skip record means "consumed without effect" (rejected here, or a skip entry): which one is kept
    // out of the record so the primary's log and its echo's are the same bytes.
    position.recent.push([rec.useq, rec.op === 'skip' ? 'skip' : 200]);
    if (position.recent.length > 8192) position.recent = position.recent.slice(-4096);
  }
  if (rec.op === 'put') data.set(rec.key ?? '', rec.value ?? '');
  else if (rec.op === 'delete') data.delete(rec.key ?? '');
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

/** @type {{line: Buffer, done: () => void}[]} */
let pending = [];
let flushScheduled = false;
const stats = {
  reads: 0,
  writes: 0,
  deletes: 0,
  duplicates: 0,
  fsyncs: 0,
  batches: 0,
  startedAt: Date.now(),
};

let flushing = false;

/** Writes the pending records durably (`O_DSYNC`, off the event loop), then acknowledges them. */
function flush() {
  flushScheduled = false;
  if (flushing || pending.length === 0) return;
  flushing = true;
  const batch = pending;
  pending = [];
  const buf = Buffer.concat(batch.map((p) => p.line));
  const done = () => {
    stats.fsyncs++;
    logBytes += buf.length;
    for (const p of batch) p.done();
    flushing = false;
    if (pending.length > 0) flush();
  };
  writeAll(buf, 0, done);
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

/** Flushes synchronously (shutdown and reload). */
function flushSync() {
  const batch = pending;
  pending = [];
  if (batch.length === 0) return;
  const buf = Buffer.concat(batch.map((p) => p.line));
  let written = 0;
  while (written < buf.length) written += writeSync(fd, buf, written, buf.length - written);
  fdatasyncSync(fd);
  logBytes += buf.length;
  for (const p of batch) p.done();
}

/**
 * Appends a record durably, then applies it; resolves once it is on disk. The record is queued (and
 * visible to {@link exists}) at once, in call order.
 * @param {Omit<KvRecord, 'seq'>} rec
 * @returns {Promise<number>} the record's sequence number
 */
function commit(rec) {
  const full = { seq: ++seq, ...rec };
  if ((rec.op === 'put' || rec.op === 'delete') && rec.key !== undefined)
    unflushed.set(rec.key, { value: rec.op === 'put' ? (rec.value ?? '') : undefined, rec: full });
  // The id is claimed at once (a retry racing this write is a duplicate); the value becomes visible
  // to readers only once it is durable.
  if (full.id) appliedIds.add(full.id);
  const body = Buffer.from(JSON.stringify(full), 'utf8');
  const line = Buffer.concat([
    Buffer.from(crc32(body).toString(16).padStart(8, '0') + ' ', 'latin1'),
    body,
    Buffer.from('\n'),
  ]);
  return new Promise((resolve) => {
    pending.push({
      line,
      done: () => {
        applyRecord(full);
        if (full.key !== undefined && unflushed.get(full.key)?.rec === full) unflushed.delete(full.key);
        resolve(full.seq);
      },
    });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
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
    req.on('end', () => resolve(Buffer.concat(chunks)));
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

/**
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://kv');
  if (url.pathname === '/healthz') return json(res, 200, { ok: true });
  if (url.pathname === '/stats' && req.method === 'GET') {
    return json(res, 200, {
      keys: data.size,
      seq,
      understudySeq,
      maxEpoch: Math.max(maxEpoch, gate.maxEpoch),
      appliedSeq: gate.appliedSeq,
      stream: gate.stream,
      logBytes,
      recovered,
      truncatedBytes,
      role: process.env.UNDERSTUDY_ROLE ?? 'primary',
      uptimeMs: Date.now() - stats.startedAt,
      ...stats,
    });
  }
  if (url.pathname === '/admin/reload' && req.method === 'POST') {
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
  if (url.pathname === BATCH_PATH && req.method === 'POST') return handleBatch(req, res);
  const sequenced = req.method === 'GET' ? undefined : readSequence(req.headers);
  if (sequenced) return handleSequenced(req, res, url, sequenced);
  const m = /^\/kv\/([^/]+)$/.exec(url.pathname);
  if (!m) return json(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  const key = decodeURIComponent(m[1] ?? '');
  const id = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined;
  const epochHeader = req.headers['x-understudy-epoch'];
  const epoch = typeof epochHeader === 'string' ? Number(epochHeader) : 0;
  // Serial order: a replay's seq (pipelined writes are handled above).
  const useqHeader = req.headers['x-understudy-seq'];
  const useq = typeof useqHeader === 'string' && /^\d+$/.test(useqHeader) ? { useq: Number(useqHeader) } : {};
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
    case 'PUT': {
      const value = await readBody(req);
      if (id && appliedIds.has(id)) {
        stats.duplicates++;
        understudySeq = Math.max(understudySeq, useq.useq ?? 0);
        return json(res, 200, { ok: true, key, duplicate: true }, ackHeaders(epoch));
      }
      const s = await commit({
        op: 'put',
        key,
        value,
        ...(id ? { id } : {}),
        ...(epoch ? { epoch } : {}),
      });
      understudySeq = Math.max(understudySeq, useq.useq ?? 0);
      stats.writes++;
      return json(res, 200, { ok: true, key, seq: s }, ackHeaders(epoch));
    }
    case 'DELETE': {
      if (id && appliedIds.has(id)) {
        stats.duplicates++;
        understudySeq = Math.max(understudySeq, useq.useq ?? 0);
        return json(res, 200, { ok: true, key, duplicate: true }, ackHeaders(epoch));
      }
      const existed = data.has(key);
      const s = await commit({
        op: 'delete',
        key,
        ...(id ? { id } : {}),
        ...(epoch ? { epoch } : {}),
      });
      understudySeq = Math.max(understudySeq, useq.useq ?? 0);
      stats.deletes++;
      return json(res, existed ? 200 : 404, { ok: existed, key, seq: s }, existed ? ackHeaders(epoch) : {});
    }
    default:
      res.setHeader('allow', 'GET, PUT, DELETE');
      return json(res, 405, { error: `method ${req.method} not allowed on /kv/:key` });
  }
}

/**
 * A write in pipelined order: reads its body, then {@link applySequenced}.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 * @param {URL} url
 * @param {import('../lib/seq-gate.mjs').Sequenced} s
 */
async function handleSequenced(req, res, url, s) {
  // Read the body before taking the turn: the next seq must not wait for a slow client.
  const value = await readBody(req);
  const id = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined;
  const a = await applySequenced(req.method ?? '', url.pathname, id, value, s);
  return json(res, a.status, a.body, a.headers);
}

/**
 * One sequenced write (a single request or an entry of a batch): waits for its seq's turn, then
 * consumes the seq with exactly one record, queued before the next seq may run; resolves once that
 * record is durable, with the answer.
 * @param {string} method
 * @param {string} pathname
 * @param {string | undefined} id
 * @param {string} value
 * @param {import('../lib/seq-gate.mjs').Sequenced} s
 * @returns {Promise<{ status: number, body: unknown, headers?: Record<string, string> }>}
 */
async function applySequenced(method, pathname, id, value, s) {
  const m = /^\/kv\/([^/]+)$/.exec(pathname);
  const key = m ? decodeURIComponent(m[1] ?? '') : undefined;
  const t = await gate.enter(s);
  const tag = { useq: s.seq, stream: s.stream };
  /** @param {number | 'skip'} st */
  const consume = (st) => {
    const p = commit({ op: 'skip', ...tag });
    if (t.turn === 'run') gate.complete(s.seq, st);
    return p;
  };
  if (t.turn === 'duplicate') {
    stats.duplicates++;
    const st = typeof t.outcome === 'number' ? t.outcome : t.outcome === 'skip' ? 409 : 200;
    return {
      status: s.skip ? 200 : st,
      body: { ok: st < 300, duplicate: true, seq: s.seq, outcome: t.outcome },
      headers: { [SEQ_HEADERS.outcome]: String(t.outcome) },
    };
  }
  if (t.turn === 'stale') {
    await consume(409);
    return {
      status: 409,
      body: { error: `stale epoch ${s.epoch}: this instance has seen epoch ${t.maxEpoch}` },
      headers: { [SEQ_HEADERS.outcome]: '409' },
    };
  }
  if (s.skip) {
    await consume('skip');
    return { status: 200, body: { ok: true, skipped: s.seq }, headers: { [SEQ_HEADERS.outcome]: 'skip' } };
  }
  const epoch = s.epoch ? { epoch: s.epoch } : {};
  if (key === undefined || (method !== 'PUT' && method !== 'DELETE')) {
    const st = key === undefined ? 404 : 405;
    await consume(st);
    return { status: st, body: { error: `no route ${method} ${pathname}` } };
  }
  if (id && appliedIds.has(id)) {
    stats.duplicates++;
    await consume(200);
    return { status: 200, body: { ok: true, key, duplicate: true } };
  }
  if (method === 'DELETE' && !exists(key)) {
    await consume(404);
    return { status: 404, body: { ok: false, key } };
  }
  const rec =
    method === 'PUT'
      ? commit({ op: 'put', key, value, ...(id ? { id } : {}), ...epoch, ...tag })
      : commit({ op: 'delete', key, ...(id ? { id } : {}), ...epoch, ...tag });
  gate.complete(s.seq, 200);
  const written = await rec;
  if (method === 'PUT') stats.writes++;
  else stats.deletes++;
  return { status: 200, body: { ok: true, key, seq: written } };
}

/**
 * A batch of sequenced writes from the router (`echo.mutations.batch`, docs/failover.md): every entry
 * goes through {@link applySequenced} at once, so one group commit takes them together.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
async function handleBatch(req, res) {
  const batch = decodeBatch(await readRaw(req, MAX_BATCH));
  stats.batches++;
  const answer = await applyBatch(batch, async (e) => {
    const s = readSequence(e.headers);
    if (!s) return 400;
    const a = await applySequenced(
      e.method,
      new URL(e.path, 'http://kv').pathname,
      e.headers['x-request-id'],
      e.body.toString('utf8'),
      s,
    );
    return a.status;
  });
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

function shutdown() {
  server.close();
  server.closeIdleConnections();
  flushSync();
  closeSync(fd);
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
