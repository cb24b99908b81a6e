import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SeqGate, SeqHeaderError, readSequence, type Sequenced } from './seq-gate.mjs';

const req = (seq: number, extra: Partial<Sequenced> = {}): Sequenced => ({
  seq,
  stream: 's1',
  epoch: 1,
  skip: false,
  ...extra,
});

describe('SeqGate', () => {
  it('runs requests in seq order whatever order they arrive in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray(
          Array.from({ length: 20 }, (_, i) => i + 1),
          { minLength: 20, maxLength: 20 },
        ),
        async (arrival) => {
          const gate = new SeqGate({ stream: 's1' });
          const ran: number[] = [];
          await Promise.all(
            arrival.map(async (seq) => {
              const t = await gate.enter(req(seq));
              expect(t.turn).toBe('run');
              // An asynchronous step between the turn and completion must not let the next one in.
              await Promise.resolve();
              ran.push(seq);
              gate.complete(seq, 200);
            }),
          );
          expect(ran).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
          expect(gate.appliedSeq).toBe(20);
          expect(gate.waiting).toBe(0);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('answers a seq seen again as a duplicate with the first outcome, also while the first still runs', async () => {
    const gate = new SeqGate({ stream: 's1' });
    const first = await gate.enter(req(1));
    expect(first.turn).toBe('run');
    const concurrent = gate.enter(req(1));
    gate.complete(1, 201);
    expect(await concurrent).toEqual({ turn: 'duplicate', seq: 1, outcome: 201 });
    expect(await gate.enter(req(1))).toEqual({ turn: 'duplicate', seq: 1, outcome: 201 });
  });

  it('records a skip as the outcome of its seq and lets the next one run', async () => {
    const gate = new SeqGate({ stream: 's1' });
    const second = gate.enter(req(2));
    const t = await gate.enter(req(1, { skip: true }));
    expect(t.turn).toBe('run');
    gate.complete(1, 'skip');
    expect((await second).turn).toBe('run');
    expect(await gate.enter(req(1))).toMatchObject({ turn: 'duplicate', outcome: 'skip' });
  });

  it('refuses a request stamped with an older epoch than one already seen, consuming its seq as a 409', async () => {
    const gate = new SeqGate({ stream: 's1' });
    expect((await gate.enter(req(1, { epoch: 3 }))).turn).toBe('run');
    gate.complete(1, 200);
    expect(await gate.enter(req(2, { epoch: 2 }))).toEqual({ turn: 'stale', seq: 2, maxEpoch: 3 });
    expect(gate.appliedSeq).toBe(2);
    expect((await gate.enter(req(3, { epoch: 3 }))).turn).toBe('run');
  });

  it('after a restart treats every seq up to the recorded position as a duplicate, of the outcome recorded with it or unknown', async () => {
    const gate = new SeqGate({ stream: 's1', appliedSeq: 7, recent: [[6, 'skip']] });
    expect(await gate.enter(req(7))).toEqual({ turn: 'duplicate', seq: 7, outcome: 'unknown' });
    expect(await gate.enter(req(6))).toEqual({ turn: 'duplicate', seq: 6, outcome: 'skip' });
    expect((await gate.enter(req(8))).turn).toBe('run');
  });

  it('starts a new stream at its seq 1 and refuses what still waits in the old one', async () => {
    const gate = new SeqGate({ stream: 'old', appliedSeq: 40 });
    const oldWaiter = gate.enter(req(42, { stream: 'old' }));
    const early = gate.enter(req(2, { stream: 'new' }));
    expect(gate.stream).toBe('old');
    expect((await gate.enter(req(1, { stream: 'new' }))).turn).toBe('run');
    expect(gate.stream).toBe('new');
    expect((await oldWaiter).turn).toBe('stale');
    gate.complete(1, 200);
    expect((await early).turn).toBe('run');
    expect(gate.complete(2, 200)).toBe(true);
    expect(gate.appliedSeq).toBe(2);
  });

  it('refuses to complete a seq out of turn', async () => {
    const gate = new SeqGate({ stream: 's1' });
    void gate.enter(req(2));
    expect(() => gate.complete(2, 200)).toThrow(/whose turn it is is 1/);
  });
});

describe('readSequence', () => {
  it('reads the seq, stream, epoch and skip headers, and nothing from a request not in pipelined order', () => {
    expect(readSequence({})).toBeUndefined();
    // Serial order's replays carry the seq for information only, without a stream.
    expect(readSequence({ 'x-understudy-seq': '4' })).toBeUndefined();
    expect(
      readSequence({
        'x-understudy-seq': '12',
        'x-understudy-stream': 'abc',
        'x-understudy-epoch': '3',
        'x-understudy-skip': '1',
      }),
    ).toEqual({ seq: 12, stream: 'abc', epoch: 3, skip: true });
  });

  it('rejects malformed headers with a 400 naming the header', () => {
    const s = { 'x-understudy-stream': 's1' };
    for (const bad of ['0', '-1', '1.5', 'x', '', '99999999999999999'])
      expect(() => readSequence({ ...s, 'x-understudy-seq': bad })).toThrow(SeqHeaderError);
    expect(() => readSequence({ ...s })).toThrow(/x-understudy-seq/);
    expect(() => readSequence({ ...s, 'x-understudy-seq': ['1', '2'] })).toThrow(/x-understudy-seq/);
    expect(() => readSequence({ 'x-understudy-seq': '1', 'x-understudy-stream': '' })).toThrow(
      /x-understudy-stream/,
    );
    expect(() => readSequence({ ...s, 'x-understudy-seq': '1', 'x-understudy-epoch': 'e' })).toThrow(
      /x-understudy-epoch/,
    );
    try {
      readSequence({ ...s, 'x-understudy-seq': 'x' });
    } catch (err) {
      expect((err as SeqHeaderError).status).toBe(400);
    }
  });
});
