import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from './codes.js';

describe('error codes', () => {
  it('lists every code in docs/errors.md and nothing that the code lacks', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/`(UNDERSTUDY_ERR_[A-Z_]+)`/g)].map((m) => m[1]));
    const defined = new Set(Object.values(ErrorCode));
    expect([...defined].filter((c) => !documented.has(c))).toEqual([]);
    expect([...documented].filter((c) => !defined.has(c as never))).toEqual([]);
  });
});
