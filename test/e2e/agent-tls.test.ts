import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as Dispatcher, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterTlsIdentity,
  createClusterCa,
  ensureClusterCa,
  ensureClusterKey,
  issueLeaf,
  RemoteAgent,
  type TlsIdentity,
} from '../../src/agent/index.js';
import { ErrorCode } from '../../src/errors/index.js';
import { cliBin, repoRoot, waitFor } from './lib/cli.js';

// `understudy agent --tls` as its own process on loopback: the agent API over HTTPS under the cluster
// CA made beside the cluster key, with clients that trust it, that do not, and that speak plain HTTP.

let dir: string;
let storeDir: string;
let agent: ChildProcess | undefined;
let url: string;
let secret: string;
let control: TlsIdentity & { fingerprint: string };
const remotes: RemoteAgent[] = [];
const dispatchers: Dispatcher[] = [];

function spawnAgent(args: string[]): {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [cliBin, 'agent', '--host', 'h1', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'understudy-agent-tls-'));
  storeDir = join(dir, 'store');
  const a = spawnAgent(['--store', storeDir, '--tls', '--lease-ttl', '2s']);
  agent = a.child;
  let gone = false;
  void a.exited.then(() => (gone = true));
  await waitFor(
    () => gone || /serving https:\/\/\S+/.test(a.out()),
    20_000,
    () => `the agent did not start: ${a.out()}`,
  );
  url = /serving (https:\/\/\S+)/.exec(a.out())?.[1] ?? '';
  expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  secret = readFileSync(join(storeDir, 'cluster.key'), 'utf8').trim();
  control = await clusterTlsIdentity({ clusterKeyFile: join(storeDir, 'cluster.key'), name: 'control-test' });
});

afterAll(async () => {
  for (const r of remotes) await r.close({ leaveRunning: true });
  for (const d of dispatchers) await d.destroy();
  if (agent && agent.exitCode === null) {
    agent.kill('SIGTERM');
    await new Promise((r) => agent!.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

function remote(options: { url?: string; tls?: TlsIdentity }): RemoteAgent {
  const r = new RemoteAgent({
    host: 'h1',
    address: '127.0.0.1',
    url: options.url ?? url,
    secret,
    reconnectMs: 100,
    ...(options.tls ? { tls: options.tls } : {}),
  });
  remotes.push(r);
  return r;
}

async function raw(
  target: string,
  connect: Record<string, unknown> | undefined,
): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const dispatcher = connect ? new Dispatcher({ connect }) : undefined;
  if (dispatcher) dispatchers.push(dispatcher);
  const res = await request(`${target}/v1/info`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: '{}',
    ...(dispatcher ? { dispatcher } : {}),
  });
  return { status: res.statusCode, body: (await res.body.json()) as never };
}

describe('understudy agent --tls', () => {
  it('makes the cluster CA beside the cluster key, owner-only, and serves a certificate for its host and address', async () => {
    const ca = join(storeDir, 'cluster-ca.pem');
    expect((await import('node:fs')).statSync(ca).mode & 0o777).toBe(0o600);
    const r = remote({ tls: control });
    expect(await r.info()).toMatchObject({ host: 'h1', address: '127.0.0.1' });
    const port = await r.allocatePort();
    expect(port).toBeGreaterThan(0);
  });

  it('refuses a client that presents no certificate, or one of another CA, before doing anything (401)', async () => {
    const none = await raw(url, { ca: control.ca });
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: ErrorCode.ApiAuth });
    expect(none.body.error?.message).toMatch(
      /TLS client certificate issued by the cluster CA \(none presented\)/,
    );
    const other = await issueLeaf(await createClusterCa(), { name: 'intruder' });
    const foreign = await raw(url, { ca: control.ca, cert: other.cert, key: other.key });
    expect(foreign.status).toBe(401);
    expect(foreign.body.error?.message).toMatch(
      /issued by the cluster CA \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    );
  });

  it('is refused by a client that trusts another CA (UNDERSTUDY_ERR_TLS_CERTIFICATE), and never sent the key', async () => {
    const other = await issueLeaf(await createClusterCa(), { name: 'control-elsewhere' });
    const r = remote({ tls: other });
    await expect(r.info()).rejects.toMatchObject({
      code: ErrorCode.TlsCertificate,
      message: expect.stringMatching(
        /presented a certificate this process refuses .*SELF_SIGNED_CERT_IN_CHAIN/,
      ),
    });
  });

  it('answers a plain-HTTP client 426 with UNDERSTUDY_ERR_TLS_REQUIRED instead of a reset', async () => {
    const plain = await raw(url.replace('https://', 'http://'), undefined);
    expect(plain.status).toBe(426);
    expect(plain.body.error).toMatchObject({
      code: ErrorCode.TlsRequired,
      message: expect.stringContaining('speaks HTTPS only'),
    });
  });

  it('a TLS client refuses an http:// address, and a client without TLS an https:// one, with a clear error', async () => {
    await expect(
      remote({ url: url.replace('https://', 'http://'), tls: control }).info(),
    ).rejects.toMatchObject({
      code: ErrorCode.TlsRequired,
      message: expect.stringContaining('refusing to send the cluster key in clear'),
    });
    await expect(remote({}).info()).rejects.toMatchObject({
      code: ErrorCode.TlsRequired,
      message: expect.stringContaining('runs without TLS'),
    });
  });

  it('a second agent refuses to start on a CA file that others can read (UNDERSTUDY_ERR_TLS_KEY_PERMISSIONS)', async () => {
    const ca = join(storeDir, 'cluster-ca.pem');
    chmodSync(ca, 0o644);
    try {
      const b = spawnAgent(['--store', storeDir, '--host', 'h2', '--tls']);
      expect(await b.exited).not.toBe(0);
      expect(b.out()).toContain('readable by others (mode 644)');
      expect(b.out()).not.toContain('BEGIN PRIVATE KEY');
    } finally {
      chmodSync(ca, 0o600);
    }
  });

  it("refuses to start an agent whose cluster-ca.pem is not the one the cluster's store records", async () => {
    const elsewhere = join(dir, 'elsewhere');
    ensureClusterKey(join(elsewhere, 'cluster.key'));
    const other = await ensureClusterCa(join(elsewhere, 'cluster-ca.pem'));
    expect(other.certPem).not.toBe(control.ca);
    const b = spawnAgent([
      '--store',
      storeDir,
      '--host',
      'h3',
      '--tls',
      '--cluster-key',
      join(elsewhere, 'cluster.key'),
    ]);
    expect(await b.exited).not.toBe(0);
    expect(b.out()).toContain("is not this cluster's CA");
    expect(b.out()).toContain(control.fingerprint);
    expect(b.out()).not.toContain('serving');
  });
});
