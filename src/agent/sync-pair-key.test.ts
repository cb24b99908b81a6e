import { describe, expect, it } from 'vitest';
import { syncPairKey } from './sync-pair-key.js';

const SECRET = 'a'.repeat(64);

describe('syncPairKey', () => {
  it('is the same 32 bytes on both agents of a pair, and another key for another service, direction, host or secret', () => {
    const k = syncPairKey(SECRET, 'kv', 'h1', 'h2');
    expect(k).toHaveLength(32);
    expect(syncPairKey(SECRET, 'kv', 'h1', 'h2').equals(k)).toBe(true);
    const others = [
      syncPairKey(SECRET, 'web', 'h1', 'h2'),
      syncPairKey(SECRET, 'kv', 'h2', 'h1'),
      syncPairKey(SECRET, 'kv', 'h1', 'h3'),
      syncPairKey('b'.repeat(64), 'kv', 'h1', 'h2'),
      // Names are bound as a list: moving a character across a boundary is another pair.
      syncPairKey(SECRET, 'kvh', '1', 'h2'),
    ];
    for (const o of others) expect(o.equals(k)).toBe(false);
  });
});
