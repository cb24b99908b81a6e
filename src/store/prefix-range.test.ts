import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prefixRangeEnd } from './prefix-range.js';

const utf8Compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('prefixRangeEnd', () => {
  it('increments the last code point of the prefix', () => {
    expect(prefixRangeEnd('a/')).toBe('a0');
    expect(prefixRangeEnd('services/kv')).toBe('services/kw');
  });

  it('has no end for the empty prefix or a prefix of only U+10FFFF', () => {
    expect(prefixRangeEnd('')).toBeUndefined();
    expect(prefixRangeEnd('\u{10FFFF}\u{10FFFF}')).toBeUndefined();
  });

  it('drops trailing U+10FFFF and skips the surrogate block', () => {
    expect(prefixRangeEnd('a\u{10FFFF}')).toBe('b');
    expect(prefixRangeEnd('a\uD7FF')).toBe('a\uE000');
  });

  it('bounds exactly the strings that start with the prefix, in UTF-8 byte order', () => {
    const text = fc.string({
      unit: fc.constantFrom('a', 'b', '/', '0', 'é', '\uD7FF', '\uE000', '\uFFFF', '\u{10000}', '\u{10FFFF}'),
      maxLength: 5,
    });
    fc.assert(
      fc.property(text, text, (prefix, key) => {
        const end = prefixRangeEnd(prefix);
        const inRange = utf8Compare(prefix, key) <= 0 && (end === undefined || utf8Compare(key, end) < 0);
        expect(inRange).toBe(key.startsWith(prefix));
      }),
      { numRuns: 2000 },
    );
  });
});
