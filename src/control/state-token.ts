import { createHmac, randomBytes } from 'node:crypto';

/** Environment variable that carries an instance's runtime-state transfer token. */
export const STATE_TOKEN_ENV = 'UNDERSTUDY_STATE_TOKEN';

// A key drawn once per control process: tokens are never stored, only derived from it.
const KEY = randomBytes(32);

/**
 * The bearer token an instance's `stateTransfer` endpoints must require: HMAC-SHA256 of its id under a
 * key drawn when this control process started — unguessable by other local processes (the endpoints
 * listen on loopback, where any local user could connect), different for every instance, never stored.
 * Instances started by an earlier control process (adopted after a restart) hold tokens this one
 * cannot derive: a transfer to or from them fails and is recorded; the instance serves without it.
 */
export function stateTokenFor(instanceId: string): string {
  return createHmac('sha256', KEY).update(instanceId).digest('base64url');
}
