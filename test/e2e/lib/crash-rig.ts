import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ApiClient } from '../../../src/api/index.js';
import type { InstanceRecord, ServiceView } from '../../../src/control/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './cli.js';
import { kvService } from './kv-load.js';

export { kvService };

/** Control processes and instances of crash tests: `cleanupCrashRig()` after each test stops them all. */
const ups: UpProcess[] = [];
let tag: string | undefined;

/** Stops every `up` a test started and kills instances a crashed control process left behind. */
export async function cleanupCrashRig(): Promise<void> {
  for (const up of ups.splice(0)) {
    if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGINT');
    await up.exited;
  }
  for (const pid of tag ? processesWithEnv('US_TEST_TAG', tag) : []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  tag = undefined;
}

/** What a crash test started: the spec file, the data directory, and the first `up` with its instances. */
export interface KvRun {
  file: string;
  dataDir: string;
  api: ApiClient;
  up: UpProcess;
  primary: InstanceRecord;
  echo: InstanceRecord;
}

/**
 * `up` (with `env`) running a hot kv service with one echo; resolves once both run and the key
 * `before-crash` has been written through the router.
 */
export async function startKv(work: string, env: Record<string, string> = {}): Promise<KvRun> {
  tag = randomUUID();
  const file = join(work, `${tag}.yaml`);
  writeFileSync(
    file,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: { count: 1, mode: hot }
    restart: { backoff: 50ms }
`,
  );
  const dataDir = join(work, `data-${tag}`);
  const up = await startUp(file, dataDir, env);
  ups.push(up);
  const api = ApiClient.fromDataDir(dataDir);
  await waitFor(
    async () => (await kvService(api)).instances.filter((i) => i.phase === 'running').length === 2,
    15_000,
    up.output,
  );
  const svc = await kvService(api);
  const put = await fetch(`http://${svc.dataPlane?.address}/kv/before-crash`, {
    method: 'PUT',
    body: 'kept',
  });
  expect(put.status).toBe(200);
  const primary = svc.instances.find((i) => i.role === 'primary');
  const echo = svc.instances.find((i) => i.role === 'echo');
  if (!primary?.pid || !echo?.pid) throw new Error('expected a running primary and echo');
  return { file, dataDir, api, up, primary, echo };
}

/**
 * {@link startKv} with `UNDERSTUDY_TEST_CRASH_AT=crashAt`, then a forced failover: resolves once the
 * control process has killed itself at that point of the promotion.
 */
export async function startCrashing(work: string, crashAt: string): Promise<KvRun> {
  const run = await startKv(work, { UNDERSTUDY_TEST_CRASH_AT: crashAt });
  const { up } = run;
  // The request gets no answer: the control process dies while serving it.
  await run.api.failover('kv', 'test').then(
    () => undefined,
    () => undefined,
  );
  await waitFor(
    () => up.child.signalCode !== null || up.child.exitCode !== null,
    10_000,
    () => `the control process did not die at ${crashAt}: ${up.output()}`,
  );
  expect(up.child.signalCode).toBe('SIGKILL');
  return run;
}

/** A fresh `up` on the same data directory; resolves once the router answers 2xx for the key written before the crash. */
export async function restartAndRead(
  file: string,
  dataDir: string,
): Promise<{ api: ApiClient; svc: ServiceView }> {
  const up = await startUp(file, dataDir);
  ups.push(up);
  const api = ApiClient.fromDataDir(dataDir);
  let last = '';
  await waitFor(
    async () => {
      const address = (await kvService(api)).dataPlane?.address;
      const res = await fetch(`http://${address}/kv/before-crash`).catch((err: unknown) => err as Error);
      last = res instanceof Error ? res.message : `${res.status} ${await res.text()}`;
      return last === '200 kept';
    },
    20_000,
    () => `the service never answered 200 after the restart (last: ${last}); ${up.output()}`,
  );
  return { api, svc: await kvService(api) };
}
