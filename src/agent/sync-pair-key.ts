import { hkdfSync } from 'node:crypto';

/**
 * The file-sync key of one service between two hosts (cross-host sync): HKDF-SHA256 of the cluster
 * secret, bound to the service, the primary's host and the echoes' host, so each pair of hosts has its
 * own key and no key travels: both agents derive it from the secret they hold. 32 bytes; never logged.
 */
export function syncPairKey(secret: string, service: string, sourceHost: string, echoHost: string): Buffer {
  return Buffer.from(
    hkdfSync(
      'sha256',
      Buffer.from(secret, 'utf8'),
      Buffer.from('understudy file sync between hosts', 'utf8'),
      Buffer.from(JSON.stringify([service, sourceHost, echoHost]), 'utf8'),
      32,
    ),
  );
}
