import { X509Certificate } from 'node:crypto';
import { linkSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { createClusterCa, type ClusterCa } from './cluster-ca.js';

/** File name of the cluster CA (certificate and key, PEM) beside the cluster key. */
export const CLUSTER_CA_FILE = 'cluster-ca.pem';

/** The cluster CA file that goes with a cluster key file: `cluster-ca.pem` in the same directory. */
export function clusterCaPath(clusterKeyFile: string): string {
  return join(dirname(clusterKeyFile), CLUSTER_CA_FILE);
}

const CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/;
const KEY = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/;

/**
 * Reads the cluster CA (its certificate and private key, both PEM in one file). The file must be the
 * owner's alone: one that others could read (any group or other bit) is refused, not tightened — the
 * CA key may already have leaked, and a new CA is the fix.
 * Thrown: UNDERSTUDY_ERR_TLS_CA_MISSING (no file: `details.missing`), UNDERSTUDY_ERR_TLS_KEY_PERMISSIONS
 * (readable by others, or not a regular file), UNDERSTUDY_ERR_TLS_CERTIFICATE (not a CA, expired).
 */
export function readClusterCa(path: string): ClusterCa {
  let text: string;
  try {
    const st = lstatSync(path);
    if (!st.isFile())
      throw new UnderstudyError(
        ErrorCode.TlsKeyPermissions,
        `the cluster CA ${path} is not a regular file (a symbolic link or something else): refusing it`,
        { details: { path } },
      );
    if ((st.mode & 0o077) !== 0)
      throw new UnderstudyError(
        ErrorCode.TlsKeyPermissions,
        `the cluster CA ${path} holds a private key and is readable by others (mode ${(st.mode & 0o777).toString(8)}): ` +
          `refusing to use it; make it the owner's only (chmod 600), or make a new CA if others may have read it`,
        { details: { path, mode: st.mode & 0o777 } },
      );
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof UnderstudyError) throw err;
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UnderstudyError(
      missing ? ErrorCode.TlsCaMissing : ErrorCode.TlsKeyPermissions,
      missing
        ? `no cluster CA at ${path}: copy the cluster-ca.pem that sits beside the cluster key of the first agent or control process there (mode 0600), or turn TLS off with --no-tls`
        : `cannot read the cluster CA ${path}: ${(err as Error).message}`,
      { cause: err, details: { path, missing } },
    );
  }
  const certPem = CERT.exec(text)?.[0];
  const keyPem = KEY.exec(text)?.[0];
  if (!certPem || !keyPem)
    throw new UnderstudyError(
      ErrorCode.TlsCertificate,
      `the cluster CA ${path} must hold a CERTIFICATE and a PRIVATE KEY (PEM); it holds ${certPem ? 'no key' : 'no certificate'}`,
      { details: { path } },
    );
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new UnderstudyError(ErrorCode.TlsCertificate, `the cluster CA ${path}: unreadable certificate`, {
      cause: err,
      details: { path },
    });
  }
  if (!cert.ca)
    throw new UnderstudyError(
      ErrorCode.TlsCertificate,
      `the certificate in ${path} is not a CA certificate`,
      {
        details: { path },
      },
    );
  if (Date.now() > Date.parse(cert.validTo))
    throw new UnderstudyError(
      ErrorCode.TlsCertificate,
      `the cluster CA ${path} expired on ${new Date(cert.validTo).toISOString()}: make a new one and restart every process`,
      { details: { path, validTo: cert.validTo } },
    );
  return { certPem: certPem.endsWith('\n') ? certPem : certPem + '\n', keyPem };
}

/**
 * The cluster CA at `path`, created when missing (see {@link createClusterCa}). Creation is atomic and
 * exclusive: the file is written 0600 under a temporary name and hard-linked into place, so processes
 * starting together (agents sharing one directory) all end up with the one CA that won, and nobody
 * ever reads half a file. The directory is created 0700. Thrown: as {@link readClusterCa}.
 */
export async function ensureClusterCa(path: string): Promise<ClusterCa> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    return readClusterCa(path);
  } catch (err) {
    if ((err as { code?: string }).code !== ErrorCode.TlsCaMissing) throw err;
  }
  const ca = await createClusterCa();
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, ca.certPem + ca.keyPem, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process made it first: its CA is the cluster's.
  } finally {
    rmSync(tmp, { force: true });
  }
  return readClusterCa(path);
}
