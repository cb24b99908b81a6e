#!/usr/bin/env node
// @ts-check
// Example workload for Understudy's scaling: a stateless HTTP service whose requests cost measurable CPU.
//   GET /work?ms=N   burns about N ms of CPU (default 5, at most 1000) and answers with what it did
//   GET /item/KEY    a cached computation: a miss burns `--miss-ms` of CPU (default 20), a hit none
//   GET /healthz     GET /stats (with the cache's hits, misses, size and the warming copies seen)
//   GET /state/export, POST /state/import   the cache as NDJSON lines {"k","v"} (runtime-state
//                    transfer), only with `authorization: Bearer $UNDERSTUDY_STATE_TOKEN`
// It takes a moment to become ready (`--warmup MS`, default 1500): the cold start that a warm echo,
// already running, does not pay; its cache starts empty (the warm-up that warming or transfer saves).
//
// Usage: node server.mjs --port 8080 [--host 127.0.0.1] [--warmup 1500] [--miss-ms 20] [--cache-size 10000]
import { createServer } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createInterface } from 'node:readline';

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {Record<string, string>} */
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a.startsWith('--')) out[a.slice(2)] = argv[++i] ?? '';
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const port = Number(args.port ?? 0);
const host = args.host ?? '127.0.0.1';
const warmupMs = Number(args.warmup ?? 1500);
const missMs = Number(args['miss-ms'] ?? 20);
const cacheSize = Number(args['cache-size'] ?? 10_000);
if (
  !Number.isInteger(port) ||
  port < 0 ||
  port > 65535 ||
  !Number.isFinite(warmupMs) ||
  warmupMs < 0 ||
  !(missMs >= 0 && missMs <= 1000) ||
  !(Number.isInteger(cacheSize) && cacheSize >= 1)
) {
  process.stderr.write(
    'api: usage: server.mjs --port N [--host H] [--warmup MS] [--miss-ms 0..1000] [--cache-size N>=1]\n',
  );
  process.exit(2);
}
const stateToken = process.env.UNDERSTUDY_STATE_TOKEN ?? '';

const stats = { requests: 0, cpuMs: 0, startedAt: Date.now() };
/** The cache: key → computed value, least recently used first (Map order), at most `cacheSize`. */
const cache = new Map();
const cacheStats = { hits: 0, misses: 0, warmCopies: 0, imported: 0, exported: 0 };

/** @param {string} k @param {string} v */
function cachePut(k, v) {
  cache.delete(k);
  cache.set(k, v);
  if (cache.size > cacheSize) cache.delete(cache.keys().next().value);
}

/** Whether the request carries the state-transfer token (constant-time compare). @param {import('node:http').IncomingMessage} req */
function stateAuthorized(req) {
  if (stateToken === '') return false;
  const got = Buffer.from(String(req.headers.authorization ?? ''));
  const want = Buffer.from(`Bearer ${stateToken}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Burns about `ms` of CPU with real work (hashing), returns the digest. @param {number} ms */
function burn(ms) {
  const until = performance.now() + ms;
  let h = createHash('sha256');
  let digest = '';
  while (performance.now() < until) {
    h.update('understudy');
    digest = h.copy().digest('hex');
    if (digest.length === 0) h = createHash('sha256');
  }
  return digest;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://api');
  const send = (/** @type {number} */ status, /** @type {unknown} */ body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (url.pathname === '/healthz') return send(200, { ok: true });
  if (url.pathname === '/stats')
    return send(200, {
      ...stats,
      uptimeMs: Date.now() - stats.startedAt,
      role: process.env.UNDERSTUDY_ROLE ?? 'primary',
      cache: { ...cacheStats, size: cache.size },
    });
  if (url.pathname.startsWith('/item/') && (req.method === 'GET' || req.method === 'HEAD')) {
    const key = decodeURIComponent(url.pathname.slice('/item/'.length));
    if (req.headers['x-understudy-mirror'] === 'warm') cacheStats.warmCopies++;
    stats.requests++;
    let value = cache.get(key);
    if (value !== undefined) {
      cacheStats.hits++;
      cachePut(key, value);
    } else {
      cacheStats.misses++;
      const t0 = performance.now();
      value = burn(missMs).slice(0, 16);
      stats.cpuMs += performance.now() - t0;
      cachePut(key, value);
    }
    return send(200, { key, value, instance: process.env.UNDERSTUDY_INSTANCE ?? 'api' });
  }
  if (url.pathname === '/state/export' && req.method === 'GET') {
    if (!stateAuthorized(req)) return send(403, { error: 'state transfer needs the instance token' });
    // Streamed a line at a time, with back-pressure: memory stays bounded by one entry.
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const it = [...cache.keys()][Symbol.iterator]();
    const pump = () => {
      for (let n = it.next(); !n.done; n = it.next()) {
        const v = cache.get(n.value);
        if (v === undefined) continue;
        cacheStats.exported++;
        if (!res.write(JSON.stringify({ k: n.value, v }) + '\n')) return void res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  if (url.pathname === '/state/import' && req.method === 'POST') {
    if (!stateAuthorized(req)) return send(403, { error: 'state transfer needs the instance token' });
    let n = 0;
    let bad = 0;
    const lines = createInterface({ input: req, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (line === '') return;
      try {
        const e = JSON.parse(line);
        if (typeof e.k === 'string' && typeof e.v === 'string') {
          cachePut(e.k, e.v);
          n++;
        } else bad++;
      } catch {
        bad++;
      }
    });
    lines.on('close', () => {
      cacheStats.imported += n;
      send(200, { imported: n, rejected: bad, size: cache.size });
    });
    return;
  }
  if (url.pathname === '/work' && (req.method === 'GET' || req.method === 'HEAD')) {
    const ms = Math.min(1000, Math.max(0, Number(url.searchParams.get('ms') ?? 5) || 0));
    const t0 = performance.now();
    const digest = burn(ms);
    const spent = performance.now() - t0;
    stats.requests++;
    stats.cpuMs += spent;
    return send(200, {
      ms: Math.round(spent * 100) / 100,
      digest: digest.slice(0, 16),
      instance: process.env.UNDERSTUDY_INSTANCE ?? 'api',
    });
  }
  return send(404, { error: `no route ${req.method} ${url.pathname}` });
});

// The cold start: loading caches, warming JIT, connecting to dependencies — simulated by a delay.
setTimeout(() => {
  server.listen(port, host, () => {
    const a = server.address();
    process.stdout.write(`api listening on http://${host}:${typeof a === 'object' && a ? a.port : port}\n`);
  });
}, warmupMs);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeIdleConnections();
    process.exit(0);
  });
}
