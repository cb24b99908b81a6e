import { X509Certificate } from 'node:crypto';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { clusterCaPath, ensureClusterCa } from './cluster-ca-file.js';
import { issueLeaf, type TlsIdentity } from './cluster-ca.js';

/** Store key holding the SHA-256 fingerprint of the cluster CA certificate (public, not a secret). */
export const CLUSTER_CA_PIN_KEY = 'cluster/ca-sha256';

/**
 * What {@link clusterTlsIdentity} needs of the store to pin the CA: `get` and `compareAndSet` of
 * `StateStore` (src/store), named by shape so that the agent module does not depend on the store module.
 */
export interface CaPinStore {
  get(key: string): Promise<{ value: string } | undefined>;
  compareAndSet(key: string, value: string, options: { expectedRevision: number }): Promise<unknown>;
}

/** Options of {@link clusterTlsIdentity}. */
export interface ClusterTlsOptions {
  /** The cluster key file: the CA is `cluster-ca.pem` in its directory. */
  clusterKeyFile: string;
  /** Common name of the leaf (the host name of an agent, `control-<name>` of a control replica). */
  name: string;
  /** IP addresses the leaf names (those peers connect to). @default [] */
  ips?: string[];
  /** More DNS names the leaf names. @default [] */
  dns?: string[];
  /**
   * The cluster's store: the CA's fingerprint is recorded there by the first process and checked by
   * every later one, so a host that made or was given another CA is refused at start instead of
   * failing every handshake. @default none: not checked
   */
  store?: CaPinStore;
}

/**
 * This process's TLS identity in the cluster: the cluster CA beside the cluster key (created by the
 * first process that needs it, exclusively, so processes starting together agree), checked against the
 * fingerprint in the store, and a fresh leaf for `name` and its addresses issued from it, held in
 * memory only. Thrown: UNDERSTUDY_ERR_TLS_KEY_PERMISSIONS, UNDERSTUDY_ERR_TLS_CERTIFICATE (a bad CA, or
 * not the cluster's), UNDERSTUDY_ERR_CONFIG (a bad address).
 */
export async function clusterTlsIdentity(
  options: ClusterTlsOptions,
): Promise<TlsIdentity & { caFile: string; fingerprint: string }> {
  const caFile = clusterCaPath(options.clusterKeyFile);
  const ca = await ensureClusterCa(caFile);
  const fingerprint = new X509Certificate(ca.certPem).fingerprint256;
  if (options.store) {
    await options.store.compareAndSet(CLUSTER_CA_PIN_KEY, fingerprint, { expectedRevision: 0 });
    const pinned = (await options.store.get(CLUSTER_CA_PIN_KEY))?.value;
    if (pinned !== undefined && pinned !== fingerprint)
      throw new UnderstudyError(
        ErrorCode.TlsCertificate,
        `the cluster CA ${caFile} (SHA-256 ${fingerprint}) is not this cluster's CA (SHA-256 ${pinned}, recorded in the store by its first process): copy cluster-ca.pem from a host of the cluster`,
        { details: { caFile, fingerprint, pinned } },
      );
  }
  const leaf = await issueLeaf(ca, {
    name: options.name,
    ...(options.ips ? { ips: options.ips } : {}),
    ...(options.dns ? { dns: options.dns } : {}),
  });
  return { ...leaf, caFile, fingerprint };
}
