import { describe, expect, it } from 'vitest';
import { parseSpecText } from '../config/index.js';
import { isUnderstudyError } from '../errors/index.js';
import { hookEnv, hookError, parseLag } from './external-echo.js';
import type { InstanceRecord } from './records.js';

const spec = parseSpecText(
  `services:\n  - name: cache\n    command: [redis-server]\n    ports: { admin: 0, redis: 0 }\n    routing: { port: redis }\n    echo: { mode: external, external: { follow: { exec: [f] }, promote: { exec: [p] } } }\n`,
  'u.yaml',
).services[0]!;

const rec = (id: string, redis: number, role: 'primary' | 'echo'): InstanceRecord => ({
  id,
  service: 'cache',
  role,
  slot: 0,
  host: 'local',
  phase: 'running',
  ports: { admin: redis + 1, redis: redis },
  stateDir: `/data/state/${id}`,
  restarts: [],
  limits: {},
  epoch: 4,
});

describe('the hook contract', () => {
  it('gives a hook the instance, its routed and named ports, its directory, the primary and the epoch', () => {
    const env = hookEnv(
      spec,
      {
        hook: 'follow',
        target: { rec: rec('cache-2', 7001, 'echo'), address: '127.0.0.1' },
        primary: { rec: rec('cache-1', 7000, 'primary'), address: '127.0.0.2' },
        epoch: 5,
        rejoin: false,
      },
      3000,
    );
    expect(env).toEqual({
      UNDERSTUDY_HOOK: 'follow',
      UNDERSTUDY_SERVICE: 'cache',
      UNDERSTUDY_INSTANCE: 'cache-2',
      UNDERSTUDY_HOST: '127.0.0.1',
      UNDERSTUDY_PORT: '7001',
      UNDERSTUDY_PORT_ADMIN: '7002',
      UNDERSTUDY_PORT_REDIS: '7001',
      UNDERSTUDY_STATE_DIR: '/data/state/cache-2',
      UNDERSTUDY_PRIMARY_INSTANCE: 'cache-1',
      UNDERSTUDY_PRIMARY_HOST: '127.0.0.2',
      UNDERSTUDY_PRIMARY_PORT: '7000',
      UNDERSTUDY_PRIMARY_STATE_DIR: '/data/state/cache-1',
      UNDERSTUDY_EPOCH: '5',
      UNDERSTUDY_REJOIN: '0',
      UNDERSTUDY_HOOK_TIMEOUT_MS: '3000',
    });
  });

  it('leaves the primary variables unset when there is no primary, and marks a rejoin', () => {
    const env = hookEnv(
      spec,
      {
        hook: 'rejoin',
        target: { rec: rec('cache-1', 7000, 'echo'), address: '::1' },
        primary: undefined,
        epoch: 5,
        rejoin: true,
      },
      5000,
    );
    expect(Object.keys(env).filter((k) => k.startsWith('UNDERSTUDY_PRIMARY'))).toEqual([]);
    expect(env['UNDERSTUDY_REJOIN']).toBe('1');
  });

  it('reads the lag hook’s JSON, null or missing fields as unknown', () => {
    expect(parseLag('e', '{"lagBytes":12,"lagSeconds":0.5}\n')).toEqual({ lagBytes: 12, lagSeconds: 0.5 });
    expect(parseLag('e', '{"lagBytes":null}')).toEqual({});
  });

  it('refuses lag output that is not a JSON object or holds a negative lag, saying what it printed', () => {
    for (const out of ['', 'lag=3', '[1]', '{"lagBytes":-1}', '{"lagBytes":"3"}']) {
      let err: unknown;
      try {
        parseLag('cache-2', out);
      } catch (e) {
        err = e;
      }
      expect(isUnderstudyError(err) && err.code).toBe('UNDERSTUDY_ERR_EXTERNAL_HOOK');
      expect((err as Error).message).toMatch(/lag hook of cache-2 printed .*expected one JSON object/);
    }
  });

  it('names the hook, the instance, how it failed and the last line of stderr in its error', () => {
    const exit = hookError('promote', 'cache-2', {
      ok: false,
      timedOut: false,
      exitCode: 1,
      stdout: '',
      stderr: 'warning\nERR not a replica\n',
      ms: 3,
    });
    expect(exit.code).toBe('UNDERSTUDY_ERR_EXTERNAL_HOOK');
    expect(exit.message).toBe('the promote hook of cache-2 exited with status 1: ERR not a replica');
    const slow = hookError('follow', 'cache-3', {
      ok: false,
      timedOut: true,
      exitCode: null,
      signal: 'SIGKILL',
      stdout: '',
      stderr: '',
      ms: 5000,
    });
    expect(slow.message).toMatch(/follow hook of cache-3 did not finish within its timeout/);
    expect(slow.details).toMatchObject({ hook: 'follow', timedOut: true });
  });
});
