import { describe, expect, it } from 'vitest';
import type { Mutation } from './mutation.js';
import { Sequencer, entryOf } from './sequencer.js';

const request = {
  method: 'put',
  path: '/kv/a',
  headers: { 'content-type': 'text/plain' },
  body: Buffer.from('x'),
};

function sequencer(): { seqs: Sequencer; released: Mutation[] } {
  const released: Mutation[] = [];
  const seqs = new Sequencer(
    () => released.at(-1)?.seq ?? 0,
    (m) => released.push(m),
  );
  return { seqs, released };
}

describe('Sequencer', () => {
  it('releases entries in seq order whatever order they are resolved in', () => {
    const { seqs, released } = sequencer();
    const [a, b, c] = [seqs.sequence(), seqs.sequence(), seqs.sequence()];
    seqs.resolve(entryOf(c, request, 'apply', 1), 'p');
    seqs.resolve(entryOf(b, request, 'skip', 1), 'p');
    expect(released).toEqual([]);
    seqs.resolve(entryOf(a, request, 'apply', 1), 'p');
    expect(released.map((m) => [m.seq, m.kind])).toEqual([
      [1, 'apply'],
      [2, 'skip'],
      [3, 'apply'],
    ]);
  });

  it('wakes a waiter when its seq is released, and gives up on one whose seq an unresolved seq holds back', async () => {
    const { seqs } = sequencer();
    const [a, b, c] = [seqs.sequence(), seqs.sequence(), seqs.sequence()];
    seqs.resolve(entryOf(c, request, 'apply', 1), 'p');
    const waitB = seqs.waitReleased(b, 10_000);
    const waitC = seqs.waitReleased(c, 30);
    // a stays unresolved: c is held back past its timeout.
    expect(await waitC).toBe(false);
    seqs.resolve(entryOf(a, request, 'apply', 1), 'p');
    seqs.resolve(entryOf(b, request, 'apply', 1), 'p');
    expect(await waitB).toBe(true);
    expect(await seqs.waitReleased(c, 30)).toBe(true);
    seqs.wakeAll();
  });

  it('wakes every waiter when closing', async () => {
    const { seqs } = sequencer();
    seqs.sequence();
    const wait = seqs.waitReleased(1, 60_000);
    seqs.wakeAll();
    expect(await wait).toBe(true);
  });
});
