import { describe, expect, it } from 'vitest';
import { serviceSchema } from './schema.js';

const base = { name: 'api', command: ['node'] };

describe('spec fields of a new instance’s first seconds', () => {
  it('defaults: a 10 s slow start for joins, no warming copies, no state transfer', () => {
    const s = serviceSchema.parse(base);
    expect(s.routing.slowStart).toBe(10_000);
    expect(s.echo.warmReads).toBe(0);
    expect(s.stateTransfer).toBeUndefined();
  });

  it('reads durations and sizes, and fills the transfer bounds', () => {
    const s = serviceSchema.parse({
      ...base,
      routing: { slowStart: '30s' },
      echo: { warmReads: 0.1 },
      stateTransfer: { export: '/state/export', import: '/state/import', maxBytes: '1Mi' },
    });
    expect(s.routing.slowStart).toBe(30_000);
    expect(s.stateTransfer).toEqual({
      export: '/state/export',
      import: '/state/import',
      timeout: 10_000,
      maxBytes: 1024 * 1024,
      warmUpReads: 2000,
      warmUpTimeout: 2000,
    });
  });

  it.each([
    ['a warm-read rate above 1', { echo: { warmReads: 1.5 } }, 'echo.warmReads'],
    [
      'an export path that is not a path',
      { stateTransfer: { export: 'state', import: '/i' } },
      'stateTransfer.export',
    ],
    ['a negative slow start', { routing: { slowStart: -1 } }, 'routing.slowStart'],
    [
      'a fractional warm-up read count',
      { stateTransfer: { export: '/e', import: '/i', warmUpReads: 2.5 } },
      'stateTransfer.warmUpReads',
    ],
  ])('refuses %s, naming the field', (_why, extra, field) => {
    const r = serviceSchema.safeParse({ ...base, ...extra });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toContain(field);
  });
});
