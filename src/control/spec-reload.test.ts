import { describe, expect, it } from 'vitest';
import { parseSpecText } from '../config/index.js';
import { applyReload, planReload, servicesToRewatch } from './spec-reload.js';

const spec = (extra: string, echo = 1): ReturnType<typeof parseSpecText> =>
  parseSpecText(
    `services:\n  - name: kv\n    command: [kv]\n    echo: { count: ${echo} }\n${extra}`,
    '/tmp/understudy.yaml',
  );

describe('planReload', () => {
  it('applies echo count, restart policy and stop grace live, with their old and new values', () => {
    const plan = planReload(
      spec(''),
      spec('    stopGrace: 2s\n    restart: { maxRestarts: 9 }\n', 2),
      () => false,
    );
    expect(plan.needsRestart).toEqual([]);
    expect(plan.live).toEqual(
      expect.arrayContaining([
        { service: 'kv', field: 'echo.count', from: 1, to: 2 },
        { service: 'kv', field: 'stopGrace', from: 5000, to: 2000 },
        { service: 'kv', field: 'restart.maxRestarts', from: 5, to: 9 },
      ]),
    );
  });

  it('leaves the command, env, ports, api and added services for a restart, never showing env values', () => {
    const a = spec('');
    const b = parseSpecText(
      `api: { listen: 127.0.0.1:7000 }\nservices:\n  - name: kv\n    command: [kv2]\n    env: { TOKEN: s3cret }\n  - name: other\n    command: [o]\n`,
      '/tmp/understudy.yaml',
    );
    const plan = planReload(a, b, () => false);
    expect(plan.live).toEqual([]);
    expect(plan.needsRestart).toEqual(
      expect.arrayContaining([
        { service: '', field: 'api' },
        { service: 'kv', field: 'command' },
        { service: 'kv', field: 'env' },
        { service: 'other', field: 'services', to: 'added' },
      ]),
    );
    expect(JSON.stringify(plan)).not.toContain('s3cret');
  });

  it("a scaled service's echo count is the autoscaler's: not live", () => {
    const plan = planReload(spec(''), spec('', 3), (s) => s === 'kv');
    expect(plan.live).toEqual([]);
    expect(plan.needsRestart).toEqual([{ service: 'kv', field: 'echo.count' }]);
  });

  it('applyReload changes the running service objects in place', () => {
    const running = spec('');
    const svc = running.services[0]!;
    applyReload(
      running.services,
      planReload(running, spec('    stopGrace: 1s\n', 2), () => false),
    );
    expect(svc.echo.count).toBe(2);
    expect(svc.stopGrace).toBe(1000);
    expect(svc.echo.mode).toBe('warm');
  });

  it('health checks and hang detection are live, and ask for the watches to start again', () => {
    const a = spec('    health: { exec: [check], interval: 1s }\n    failover: { phiThreshold: 8 }\n');
    const b = spec('    health: { exec: [check], interval: 250ms }\n    failover: { phiThreshold: 12 }\n');
    const plan = planReload(a, b, () => false);
    expect(plan.needsRestart).toEqual([]);
    expect(plan.live).toEqual([
      { service: 'kv', field: 'health.interval', from: 1000, to: 250 },
      { service: 'kv', field: 'failover.phiThreshold', from: 8, to: 12 },
    ]);
    expect(servicesToRewatch(plan)).toEqual(['kv']);
    expect(servicesToRewatch(planReload(spec(''), spec('', 2), () => false))).toEqual([]);
  });
});
