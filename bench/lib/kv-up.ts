import { join } from 'node:path';
import { root, startSpecUp, type SpecUp } from './spec-up.js';

/** A running `understudy up` of the kv example, in its own temporary data directory. */
export type KvUp = SpecUp;

/**
 * Starts `understudy up` (the built CLI, as users run it) with a kv service whose `echo:` is as given,
 * and resolves once its API answers.
 */
export async function startKvUp(
  name: string,
  echo: string,
  health = '{ http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }',
): Promise<KvUp> {
  return startSpecUp(
    name,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(root, 'examples/kv')}
    health: ${health}
    echo: ${echo}
    restart: { backoff: 50ms, maxRestarts: 1000 }
`,
  );
}
