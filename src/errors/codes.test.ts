import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isErrorCode } from './codes.js';
import { HTTP_STATUS, httpStatusOf } from './http-status.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** The rows of the table in docs/errors.md: code → the HTTP status column as written. */
function documentedStatuses(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(/^\|\s*`(UNDERSTUDY_ERR_[A-Z_]+)`\s*\|\s*([^|]*?)\s*\|/gm)) {
    rows.set(m[1] ?? '', m[2] ?? '');
  }
  return rows;
}

describe('error codes', () => {
  it('lists every code in docs/errors.md and nothing that the code lacks', () => {
    const documented = new Set([...doc.matchAll(/`(UNDERSTUDY_ERR_[A-Z_]+)`/g)].map((m) => m[1]));
    const defined = new Set(Object.values(ErrorCode));
    expect([...defined].filter((c) => !documented.has(c))).toEqual([]);
    expect([...documented].filter((c) => !defined.has(c as never))).toEqual([]);
  });

  it('gives every code the HTTP status that the status column of docs/errors.md names', () => {
    const fromDoc = Object.fromEntries(documentedStatuses());
    const fromCode = Object.fromEntries(Object.values(ErrorCode).map((c) => [c, String(httpStatusOf(c))]));
    expect(fromDoc).toEqual(fromCode);
    expect(Object.keys(HTTP_STATUS).sort()).toEqual(Object.values(ErrorCode).sort());
  });

  it('maps every code to an HTTP error status, and an unknown code to 500', () => {
    for (const code of Object.values(ErrorCode)) {
      expect(httpStatusOf(code)).toBeGreaterThanOrEqual(400);
      expect(httpStatusOf(code)).toBeLessThan(600);
    }
    expect(httpStatusOf(ErrorCode.StoreConflict)).toBe(409);
    expect(httpStatusOf(ErrorCode.ApiRequest)).toBe(400);
    expect(httpStatusOf(ErrorCode.NotReplicated)).toBe(503);
    expect(httpStatusOf('UNDERSTUDY_ERR_NO_SUCH_CODE')).toBe(500);
    expect(httpStatusOf('constructor')).toBe(500);
  });
});

describe('isErrorCode', () => {
  it('accepts every code and nothing else (codes read from the network are checked with it)', () => {
    for (const code of Object.values(ErrorCode)) expect(isErrorCode(code)).toBe(true);
    for (const other of ['UNDERSTUDY_ERR_NOPE', 'understudy_err_config', '', 42, undefined, null, {}])
      expect(isErrorCode(other)).toBe(false);
  });
});
