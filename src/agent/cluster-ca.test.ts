import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { checkLeaf, createClusterCa, issueLeaf } from './cluster-ca.js';
import { clusterCaPath, ensureClusterCa, readClusterCa } from './cluster-ca-file.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'us-ca-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('cluster CA', () => {
  it('is a self-signed ECDSA P-256 CA certificate with a PKCS#8 key', async () => {
    const ca = await createClusterCa({ name: 'test CA' });
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=test CA');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // Ten years by default.
    const years = (Date.parse(cert.validTo) - Date.now()) / (365 * 86_400_000);
    expect(years).toBeGreaterThan(9.9);
  });

  it('issues a leaf naming the host and its addresses, valid for a year, that a peer trusting the CA accepts', async () => {
    const ca = await createClusterCa();
    const leaf = await issueLeaf(ca, { name: 'host-a', ips: ['10.40.0.2', '127.0.0.1', '::1'] });
    const cert = new X509Certificate(leaf.cert);
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toBe(
      'DNS:host-a, IP Address:10.40.0.2, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);
    expect(leaf.ca).toBe(ca.certPem);
    expect(() => checkLeaf(leaf.cert, ca.certPem, { host: 'host-a', ip: '10.40.0.2' })).not.toThrow();
  });

  it('refuses a leaf of another CA, an expired one, one not yet valid, and one naming another peer', async () => {
    const ca = await createClusterCa();
    const other = await createClusterCa();
    const foreign = await issueLeaf(other, { name: 'host-a', ips: ['10.40.0.2'] });
    expect(() => checkLeaf(foreign.cert, ca.certPem)).toThrow(/not issued by the cluster CA/);
    const old = await issueLeaf(ca, {
      name: 'host-a',
      now: new Date(Date.now() - 3 * 86_400_000),
      validityDays: 1,
    });
    expect(() => checkLeaf(old.cert, ca.certPem)).toThrow(/expired on/);
    const future = await issueLeaf(ca, { name: 'host-a', now: new Date(Date.now() + 86_400_000) });
    expect(() => checkLeaf(future.cert, ca.certPem)).toThrow(/not valid before/);
    const leaf = await issueLeaf(ca, { name: 'host-a', ips: ['10.40.0.2'] });
    expect(() => checkLeaf(leaf.cert, ca.certPem, { ip: '10.40.0.3' })).toThrow(/does not name the address/);
    expect(() => checkLeaf(leaf.cert, ca.certPem, { host: 'host-b' })).toThrow(/does not name the host/);
    try {
      checkLeaf(foreign.cert, ca.certPem);
    } catch (err) {
      expect((err as { code: string }).code).toBe(ErrorCode.TlsCertificate);
    }
  });

  it('refuses an address that is not an IP', async () => {
    const ca = await createClusterCa();
    await expect(issueLeaf(ca, { name: 'h', ips: ['not-an-ip'] })).rejects.toThrow(/not an IP address/);
  });
});

describe('cluster CA file', () => {
  it('sits beside the cluster key, is created once 0600, and processes starting together agree on it', async () => {
    const d = tmp();
    const path = clusterCaPath(join(d, 'keys', 'cluster.key'));
    expect(path).toBe(join(d, 'keys', 'cluster-ca.pem'));
    const all = await Promise.all([ensureClusterCa(path), ensureClusterCa(path), ensureClusterCa(path)]);
    expect(new Set(all.map((c) => c.certPem)).size).toBe(1);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(d, 'keys')).mode & 0o777).toBe(0o700);
    expect(readClusterCa(path)).toEqual(all[0]);
    expect((await ensureClusterCa(path)).certPem).toBe(all[0]!.certPem);
    expect(readFileSync(path, 'utf8')).toContain('BEGIN PRIVATE KEY');
  });

  it('is refused, with a stable code, when missing, readable by others, a symlink, or not a CA', async () => {
    const d = tmp();
    const path = join(d, 'cluster-ca.pem');
    expect(() => readClusterCa(path)).toThrow(expect.objectContaining({ code: ErrorCode.TlsCaMissing }));
    await ensureClusterCa(path);
    chmodSync(path, 0o644);
    expect(() => readClusterCa(path)).toThrow(expect.objectContaining({ code: ErrorCode.TlsKeyPermissions }));
    await expect(ensureClusterCa(path)).rejects.toThrow(/readable by others \(mode 644\)/);
    chmodSync(path, 0o600);
    const link = join(d, 'link.pem');
    symlinkSync(path, link);
    expect(() => readClusterCa(link)).toThrow(expect.objectContaining({ code: ErrorCode.TlsKeyPermissions }));
    const leafFile = join(d, 'leaf.pem');
    const leaf = await issueLeaf(readClusterCa(path), { name: 'h' });
    writeFileSync(leafFile, leaf.cert + leaf.key, { mode: 0o600 });
    expect(() => readClusterCa(leafFile)).toThrow(/not a CA certificate/);
    writeFileSync(join(d, 'half.pem'), leaf.cert, { mode: 0o600 });
    expect(() => readClusterCa(join(d, 'half.pem'))).toThrow(
      expect.objectContaining({ code: ErrorCode.TlsCertificate }),
    );
  });
});
