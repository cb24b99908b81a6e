#!/usr/bin/env node
// @ts-check
// Example workload for Understudy's scaling: a stateless HTTP service whose requests cost measurable CPU.
//   GET /work?ms=N   burns about N ms of CPU (default 5, at most 1000) and answers with what it did
//   GET /healthz     GET /stats
// It takes a moment to become ready (`--warmup MS`, default 1500): the cold start that a warm echo,
// already running, does not pay.
//
// Usage: node server.mjs --port 8080 [--host 127.0.0.1] [--warmup 1500]
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';

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
if (!Number.isInteger(port) || port < 0 || port > 65535 || !Number.isFinite(warmupMs) || warmupMs < 0) {
  process.stderr.write('api: usage: server.mjs --port N [--host H] [--warmup MS]\n');
  process.exit(2);
}

const stats = { requests: 0, cpuMs: 0, startedAt: Date.now() };

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
    });
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
