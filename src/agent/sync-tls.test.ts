// File sync wrapped in TLS with mutual authentication by the cluster CA (the cross-host sync
// connection), on loopback: only peers holding a leaf of the same CA reach the frame protocol.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type UnderstudyError } from '../errors/index.js';
import { SyncSource, SyncTarget, verifyTrees } from '../sync/index.js';
import { createClusterCa, issueLeaf, type ClusterCa, type TlsIdentity } from './cluster-ca.js';

const KEY = 'sync-tls-test-key-0123456789abcdef';
let dir: string;
let ca: ClusterCa;
let primary: TlsIdentity;
let echo: TlsIdentity;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'us-sync-tls-'));
  ca = await createClusterCa();
  primary = await issueLeaf(ca, { name: 'primary-host', ips: ['127.0.0.1'] });
  echo = await issueLeaf(ca, { name: 'echo-host', ips: ['127.0.0.2'] });
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function source(
  name: string,
  tls: TlsIdentity,
): Promise<{ src: SyncSource; errors: UnderstudyError[] }> {
  const a = join(dir, name, 'a');
  await mkdir(a, { recursive: true });
  writeFileSync(join(a, 'data.txt'), `state of ${name}\n`);
  const src = await SyncSource.create({ dir: a, key: KEY, host: '127.0.0.1', scanIntervalMs: 0, tls });
  const errors: UnderstudyError[] = [];
  src.on('error', (e: UnderstudyError) => errors.push(e));
  closers.push(() => src.close());
  return { src, errors };
}

async function target(
  name: string,
  port: number,
  tls: TlsIdentity | undefined,
): Promise<{ t: SyncTarget; security: { code: string; message: string }[] }> {
  const t = await SyncTarget.create({
    dir: join(dir, name, 'b'),
    key: KEY,
    port,
    durable: false,
    reconnectDelayMs: 50,
    ...(tls ? { tls } : {}),
  });
  const security: { code: string; message: string }[] = [];
  t.on('security', (e: { code: string; message: string }) => security.push(e));
  t.on('error', () => undefined);
  closers.push(() => t.close());
  return { t, security };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('file sync over TLS', () => {
  it('copies the tree when both sides hold a leaf of the cluster CA', async () => {
    const { src } = await source('ok', primary);
    await target('ok', src.port, echo);
    await until(
      'the trees to match',
      async () => (await verifyTrees(join(dir, 'ok', 'a'), join(dir, 'ok', 'b'))).length === 0,
    );
  });

  it('refuses an echo whose certificate is of another CA: the source reports it, nothing is copied', async () => {
    const { src, errors } = await source('foreign', primary);
    const other = await issueLeaf(await createClusterCa(), { name: 'echo-host' });
    const { t } = await target('foreign', src.port, other);
    await until('the refusal', () => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: ErrorCode.TlsCertificate });
    expect(t.stats().lastAppliedSeq).toBe(0);
    expect(t.stats().connected).toBe(false);
  });

  it('refuses an echo that speaks plain TCP, and an echo refuses a primary its CA did not issue', async () => {
    const { src, errors } = await source('plain', primary);
    const plain = await target('plain', src.port, undefined);
    await until('the refusal of plain TCP', () => errors.length > 0);
    expect(plain.t.stats().lastAppliedSeq).toBe(0);

    const impostor = await issueLeaf(await createClusterCa(), { name: 'primary-host', ips: ['127.0.0.1'] });
    const fake = await source('impostor', impostor);
    const wary = await target('impostor', fake.src.port, echo);
    await until('the echo to refuse the primary', () => wary.security.length > 0);
    expect(wary.security[0]).toMatchObject({
      code: ErrorCode.TlsCertificate,
      message: expect.stringContaining('failed TLS verification'),
    });
    expect(wary.t.stats().lastAppliedSeq).toBe(0);
  });

  it('an echo refuses a primary of the cluster whose certificate does not name the address it connects to', async () => {
    const elsewhere = await issueLeaf(ca, { name: 'other-host', ips: ['10.1.2.3'] });
    const { src } = await source('name', elsewhere);
    const wary = await target('name', src.port, echo);
    await until('the echo to refuse the primary', () => wary.security.length > 0);
    expect(wary.security[0]?.message).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});
