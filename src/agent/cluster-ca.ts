import type * as X509 from '@peculiar/x509';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

let x509Module: Promise<typeof X509> | undefined;

/**
 * `@peculiar/x509` (and the reflect polyfill it needs), loaded on the first certificate issued: it
 * takes about half a second to load, which every command that never makes a certificate (status,
 * down, events, …) would otherwise pay at start-up.
 */
function loadX509(): Promise<typeof X509> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Module;
}

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** A certificate's `notBefore` is set this far back: peers whose clocks run a little behind accept it. */
const CLOCK_SKEW_MS = 5 * 60_000;

/** The cluster CA: its certificate and its private key (PEM, PKCS#8). */
export interface ClusterCa {
  /** The CA certificate (PEM): what every peer trusts. */
  certPem: string;
  /** The CA's private key (PEM, PKCS#8): issues leaf certificates; never logged, kept 0600. */
  keyPem: string;
}

/**
 * What a process presents and trusts on a TLS connection of the cluster, as node's `tls` options take
 * them (PEM strings): its own leaf certificate and key, and the cluster CA certificate it verifies
 * peers against.
 */
export interface TlsIdentity {
  /** The cluster CA certificate (PEM). */
  ca: string;
  /** This process's leaf certificate (PEM). */
  cert: string;
  /** This process's leaf private key (PEM, PKCS#8). Never logged. */
  key: string;
}

/** Options of {@link createClusterCa}. */
export interface ClusterCaOptions {
  /** Common name of the CA. @default 'Understudy cluster CA <random id>' */
  name?: string;
  /** Days the CA certificate is valid. @default 3650 */
  validityDays?: number;
  /** The time the validity counts from (tests). @default now */
  now?: Date;
}

/** Options of {@link issueLeaf}. */
export interface LeafOptions {
  /** Common name, e.g. the host name of an agent or `control-<name>`. Also a DNS SAN when it is one. */
  name: string;
  /** More DNS names (SANs). @default [] */
  dns?: string[];
  /** IP addresses (SANs): the addresses peers connect to. @default [] */
  ips?: string[];
  /** Days the leaf certificate is valid. @default 365 */
  validityDays?: number;
  /** The time the validity counts from (tests). @default now */
  now?: Date;
}

function pem(x509: typeof X509, der: ArrayBuffer, label: string): string {
  return x509.PemConverter.encode(der, label) + '\n';
}

function serial(): string {
  // Positive (top bit clear) and 16 bytes: unique without coordination between issuers.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

/** Creates a new cluster CA: an ECDSA P-256 key and a self-signed CA certificate (path length 0). */
export async function createClusterCa(options: ClusterCaOptions = {}): Promise<ClusterCa> {
  const x509 = await loadX509();
  const now = options.now ?? new Date();
  const days = options.validityDays ?? 3650;
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const name = options.name ?? `Understudy cluster CA ${randomBytes(4).toString('hex')}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${escapeDn(name)}`,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + days * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem') + '\n', keyPem: pem(x509, keyDer, 'PRIVATE KEY') };
}

async function importCaKey(ca: ClusterCa): Promise<CryptoKey> {
  const x509 = await loadX509();
  try {
    const der = x509.PemConverter.decodeFirst(ca.keyPem);
    return (await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign'])) as CryptoKey;
  } catch (err) {
    throw new UnderstudyError(
      ErrorCode.TlsCertificate,
      'the cluster CA key is not an ECDSA P-256 private key (PEM, PKCS#8)',
      { cause: err },
    );
  }
}

/**
 * Issues a leaf certificate under the cluster CA for one process: a fresh ECDSA P-256 key, the name
 * and addresses as subject alternative names, usable as a TLS server and as a TLS client (the same
 * certificate serves the agent API and authenticates the agent when it connects out). The key is
 * returned, never written anywhere.
 * Thrown: UNDERSTUDY_ERR_TLS_CERTIFICATE for a CA that cannot sign, UNDERSTUDY_ERR_CONFIG for a bad address.
 */
export async function issueLeaf(ca: ClusterCa, options: LeafOptions): Promise<TlsIdentity> {
  const x509 = await loadX509();
  const now = options.now ?? new Date();
  const days = options.validityDays ?? 365;
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importCaKey(ca);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ips = [...new Set(options.ips ?? [])];
  for (const ip of ips)
    if (isIP(ip) === 0)
      throw new UnderstudyError(
        ErrorCode.Config,
        `certificate for '${options.name}': '${ip}' is not an IP address`,
      );
  const dns = [
    ...new Set([
      ...(isIP(options.name) === 0 && /^[A-Za-z0-9.-]+$/.test(options.name) ? [options.name] : []),
      ...(options.dns ?? []),
    ]),
  ];
  const names: X509.JsonGeneralName[] = [
    ...dns.map((value) => ({ type: 'dns' as const, value })),
    ...ips.map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${escapeDn(options.name)}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + days * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { ca: ca.certPem, cert: cert.toString('pem') + '\n', key: pem(x509, keyDer, 'PRIVATE KEY') };
}

/** Options of {@link checkLeaf}. */
export interface CheckLeafOptions {
  /** The time to check validity at. @default now */
  now?: Date;
  /** A host name the certificate must name (DNS SAN). */
  host?: string;
  /** An IP address the certificate must name (IP SAN). */
  ip?: string;
}

/**
 * Checks a leaf certificate against the cluster CA the way a peer would: issued and signed by this CA,
 * valid now, and naming `host`/`ip` when given. Thrown: UNDERSTUDY_ERR_TLS_CERTIFICATE saying which
 * check failed (malformed, another CA, expired, not yet valid, wrong name).
 */
export function checkLeaf(certPem: string, caPem: string, options: CheckLeafOptions = {}): void {
  const fail = (why: string, details: Record<string, unknown> = {}): never => {
    throw new UnderstudyError(ErrorCode.TlsCertificate, `certificate refused: ${why}`, { details });
  };
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    ca = new X509Certificate(caPem);
  } catch (err) {
    return fail(`not a PEM X.509 certificate (${(err as Error).message})`);
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
    fail(`'${cert.subject}' was not issued by the cluster CA '${ca.subject}'`, { subject: cert.subject });
  const now = (options.now ?? new Date()).getTime();
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (now > to) fail(`'${cert.subject}' expired on ${new Date(to).toISOString()}`, { validTo: cert.validTo });
  if (now < from)
    fail(`'${cert.subject}' is not valid before ${new Date(from).toISOString()}`, {
      validFrom: cert.validFrom,
    });
  if (options.host !== undefined && cert.checkHost(options.host, { subject: 'never' }) === undefined)
    fail(`'${cert.subject}' does not name the host '${options.host}'`, { host: options.host });
  if (options.ip !== undefined && cert.checkIP(options.ip) === undefined)
    fail(`'${cert.subject}' does not name the address ${options.ip}`, { ip: options.ip });
}
