import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import { parseTrace } from './trace.js';
import { readTraceFile } from './trace-file.js';

function errorOf(f: () => unknown): { code: string; message: string; details: Record<string, unknown> } {
  try {
    f();
  } catch (err) {
    if (isUnderstudyError(err))
      return { code: err.code, message: err.message, details: err.details as Record<string, unknown> };
    throw err;
  }
  throw new Error('expected a throw');
}

describe('parseTrace', () => {
  it('reads Unix seconds with a header', () => {
    const t = parseTrace('ts,value\n1628640000,39.7\n1628640060,40\n', 'a.csv');
    expect([...t.times]).toEqual([1628640000000, 1628640060000]);
    expect([...t.values]).toEqual([39.7, 40]);
    expect(t.stepMs).toBe(60_000);
  });
  it('reads ISO and NAB timestamps without a header, as UTC', () => {
    const t = parseTrace(
      '2014-07-01 00:00:00,10844\n2014-07-01T00:30:00Z,8127\n2014-07-01T02:00:00+01:00,1\n',
      'taxi.csv',
    );
    expect(t.times[0]).toBe(Date.UTC(2014, 6, 1, 0, 0, 0));
    expect(t.times[1]).toBe(Date.UTC(2014, 6, 1, 0, 30, 0));
    expect(t.times[2]).toBe(Date.UTC(2014, 6, 1, 1, 0, 0));
    // 01:00 at +01:00 is 00:00 UTC: not after the previous row.
    expect(() => parseTrace('2014-07-01 00:00:00,1\n2014-07-01T01:00:00+01:00,1\n', 'z.csv')).toThrow(
      /z\.csv:2:/,
    );
  });
  it('names the file and line of a bad value, a bad timestamp and a wrong column count', () => {
    const bad = errorOf(() => parseTrace('ts,value\n1,2\n2,abc\n', 'load.csv'));
    expect(bad).toMatchObject({ code: ErrorCode.PredictInput, details: { file: 'load.csv', line: 3 } });
    expect(bad.message).toMatch(/^load\.csv:3: value 'abc' is not a number/);
    expect(errorOf(() => parseTrace('1,2\nyesterday,3\n', 'x.csv')).message).toMatch(
      /^x\.csv:2: timestamp 'yesterday'/,
    );
    expect(errorOf(() => parseTrace('1,2\n2,3,4\n', 'x.csv')).message).toMatch(
      /^x\.csv:2: expected two columns/,
    );
    expect(errorOf(() => parseTrace('1,2\n2,-3\n', 'x.csv')).message).toMatch(
      /^x\.csv:2: value -3 must be finite and ≥ 0/,
    );
    expect(errorOf(() => parseTrace('ts,value\n1,2\n', 'x.csv')).message).toMatch(/at least two rows/);
  });
  it('never throws anything but a coded error naming the source (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseTrace(text, 'p.csv');
        } catch (err) {
          expect(isUnderstudyError(err, ErrorCode.PredictInput)).toBe(true);
          expect((err as Error).message.startsWith('p.csv:')).toBe(true);
        }
      }),
    );
  });
});

describe('readTraceFile', () => {
  it('names a missing file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-trace-'));
    try {
      await expect(readTraceFile(join(dir, 'nope.csv'))).rejects.toMatchObject({
        code: ErrorCode.PredictInput,
        message: expect.stringContaining('nope.csv'),
      });
      writeFileSync(join(dir, 'ok.csv'), '0,1\n60,2\n');
      expect((await readTraceFile(join(dir, 'ok.csv'))).values.length).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
