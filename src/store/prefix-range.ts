/**
 * The smallest string greater than every string that starts with `prefix`, in code point order (which
 * is UTF-8 byte order, SQLite's BINARY collation and etcd's key order); `undefined` when there is none
 * (empty prefix, or a prefix made only of U+10FFFF). Keys under `prefix` are exactly
 * `prefix <= key < prefixRangeEnd(prefix)`, so a prefix scan can use the key index.
 */
export function prefixRangeEnd(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0) as number);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last < 0x10ffff) {
      // Skip the surrogate block: those code points cannot appear in well-formed UTF-8.
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return String.fromCodePoint(...points, next);
    }
  }
  return undefined;
}
