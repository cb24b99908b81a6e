import { describe, expect, it } from 'vitest';
import { parseSpecText } from '../config/index.js';
import { reconcile } from './reconcile.js';
import type { InstanceRecord } from './records.js';

const spec = parseSpecText(
  `services:\n  - name: kv\n    command: [x]\n    echo: { count: 2 }\n`,
  'u.yaml',
).services;

function inst(over: Partial<InstanceRecord>): InstanceRecord {
  return {
    id: 'kv-1',
    service: 'kv',
    role: 'primary',
    slot: 0,
    host: 'local',
    phase: 'running',
    ports: {},
    stateDir: '/s',
    restarts: [],
    limits: {},
    epoch: 0,
    ...over,
  };
}

describe('reconcile', () => {
  it('starts a primary and every echo of an empty service', () => {
    const actions = reconcile(spec, [], 0);
    expect(actions.map((a) => a.type === 'start' && `${a.role}@${a.slot}`)).toEqual([
      'primary@0',
      'echo@1',
      'echo@2',
    ]);
  });

  it('does nothing when every slot runs', () => {
    const running = [
      inst({}),
      inst({ id: 'kv-2', role: 'echo', slot: 1 }),
      inst({ id: 'kv-3', role: 'echo', slot: 2 }),
    ];
    expect(reconcile(spec, running, 0)).toEqual([]);
  });

  it('restarts an exited instance only once its restart time has come', () => {
    const exited = [
      inst({ phase: 'exited', nextRestartAt: 1000, lastExit: { code: null, signal: 'SIGKILL', at: 0 } }),
      inst({ id: 'kv-2', role: 'echo', slot: 1 }),
      inst({ id: 'kv-3', role: 'echo', slot: 2 }),
    ];
    expect(reconcile(spec, exited, 999)).toEqual([]);
    const [action] = reconcile(spec, exited, 1000);
    expect(action).toMatchObject({ type: 'restart', instance: 'kv-1' });
    expect(action?.why).toMatch(/killed by SIGKILL/);
  });

  it('leaves a failed slot alone: the policy gave up on it', () => {
    const failed = [
      inst({ phase: 'failed' }),
      inst({ id: 'kv-2', role: 'echo', slot: 1 }),
      inst({ id: 'kv-3', role: 'echo', slot: 2 }),
    ];
    expect(reconcile(spec, failed, 0)).toEqual([]);
  });

  it('refills a slot whose instance was stopped', () => {
    const actions = reconcile(
      spec,
      [
        inst({ phase: 'stopped' }),
        inst({ id: 'kv-2', role: 'echo', slot: 1 }),
        inst({ id: 'kv-3', role: 'echo', slot: 2 }),
      ],
      0,
    );
    expect(actions).toEqual([expect.objectContaining({ type: 'start', role: 'primary', slot: 0 })]);
  });

  it('stops instances of services no longer in the spec and echoes beyond the count, highest slot first', () => {
    const actions = reconcile(
      spec,
      [
        inst({ id: 'old-1', service: 'old' }),
        inst({}),
        inst({ id: 'kv-2', role: 'echo', slot: 1 }),
        inst({ id: 'kv-3', role: 'echo', slot: 2 }),
        inst({ id: 'kv-9', role: 'echo', slot: 3 }),
      ],
      0,
    );
    const stopped = actions.filter((a) => a.type === 'stop').map((a) => a.type === 'stop' && a.instance);
    expect(stopped.sort()).toEqual(['kv-9', 'old-1']);
  });

  it('follows the desired counts of a scaled service: starts serving instances and shadows in free slots', () => {
    const actions = reconcile(
      spec,
      [inst({}), inst({ id: 'kv-2', role: 'echo', slot: 1 }), inst({ id: 'kv-3', role: 'echo', slot: 3 })],
      0,
      new Map([['kv', { serving: 3, echoes: 2, shadows: 1 }]]),
    );
    expect(actions.map((a) => a.type === 'start' && `${a.role}@${a.slot}`)).toEqual([
      'primary@2',
      'primary@4',
      'shadow@5',
    ]);
  });

  it('scales in by stopping a serving instance that is not running before a running one', () => {
    const actions = reconcile(
      spec,
      [
        inst({}),
        inst({ id: 'kv-4', slot: 3, phase: 'starting' }),
        inst({ id: 'kv-5', slot: 4 }),
        inst({ id: 'kv-2', role: 'echo', slot: 1 }),
        inst({ id: 'kv-3', role: 'echo', slot: 2 }),
      ],
      0,
      new Map([['kv', { serving: 2, echoes: 2, shadows: 0 }]]),
    );
    expect(actions).toEqual([expect.objectContaining({ type: 'stop', instance: 'kv-4' })]);
  });
});
