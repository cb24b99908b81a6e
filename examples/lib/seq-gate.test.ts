import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  SeqGate,
  SeqHeaderError,
  applyBatch,
  decodeBatch,
  encodeBatch,
  readSequence,
  type Sequenced,
} from './seq-gate.mjs';

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

  it('decides a turn at once (tryEnter) when nothing needs waiting, and leaves the rest to enter', async () => {
    const gate = new SeqGate({ stream: 's1' });
    expect(gate.tryEnter(req(2))).toBeUndefined(); // seq 1 not consumed yet
    expect(gate.waiting).toBe(0); // it registered nothing: the caller waits with enter
    const second = gate.enter(req(2));
    expect(gate.tryEnter(req(1))).toEqual({ turn: 'run', seq: 1 });
    expect(gate.tryEnter(req(1))).toBeUndefined(); // the same seq is running: wait for its outcome
    const concurrent = gate.enter(req(1));
    gate.complete(1, 201);
    expect(await concurrent).toEqual({ turn: 'duplicate', seq: 1, outcome: 201 });
    expect(gate.tryEnter(req(1))).toEqual({ turn: 'duplicate', seq: 1, outcome: 201 });
    expect(await second).toEqual({ turn: 'run', seq: 2 });
    gate.complete(2, 200);
    expect(gate.tryEnter(req(3, { epoch: 0 }))).toEqual({ turn: 'run', seq: 3 });
    gate.complete(3, 200);
    // Fencing and a new stream are decided at once too; another stream's later seqs wait.
    expect(gate.tryEnter(req(4, { epoch: 0 }))?.turn).toBe('run');
    gate.complete(4, 200);
    expect(gate.tryEnter(req(2, { stream: 's2' }))).toBeUndefined();
    expect(gate.tryEnter(req(1, { stream: 's2', epoch: 5 }))).toEqual({ turn: 'run', seq: 1 });
    gate.complete(1, 200);
    expect(gate.tryEnter(req(2, { stream: 's2', epoch: 4 }))).toEqual({ turn: 'stale', seq: 2, maxEpoch: 5 });
    expect([gate.stream, gate.appliedSeq]).toEqual(['s2', 2]);
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

describe('batches (decodeBatch, applyBatch)', () => {
  it('decodes what the router encodes: binary bodies intact, sequencing headers on every entry, skips marked', () => {
    const bin = Buffer.from([0, 10, 255, 13, 10]);
    const batch = decodeBatch(
      encodeBatch('s9', [
        { seq: 4, epoch: 2, method: 'PUT', path: '/kv/a', headers: { 'x-request-id': 'r1' }, body: bin },
        { seq: 5, epoch: 2, kind: 'skip', method: 'PUT', path: '/kv/a' },
        { seq: 6, epoch: 3, method: 'DELETE', path: '/kv/b', body: Buffer.alloc(0) },
      ]),
    );
    expect(batch.stream).toBe('s9');
    expect(batch.entries.map((e) => [e.seq, e.method, e.path])).toEqual([
      [4, 'PUT', '/kv/a'],
      [5, 'PUT', '/kv/a'],
      [6, 'DELETE', '/kv/b'],
    ]);
    expect(batch.entries[0]?.body.equals(bin)).toBe(true);
    expect(batch.entries[0]?.headers['x-request-id']).toBe('r1');
    expect(readSequence(batch.entries[0]?.headers ?? {})).toEqual({
      seq: 4,
      stream: 's9',
      epoch: 2,
      skip: false,
    });
    expect(readSequence(batch.entries[1]?.headers ?? {})).toEqual({
      seq: 5,
      stream: 's9',
      epoch: 2,
      skip: true,
    });
  });

  it('refuses a malformed batch with a 400 saying what is wrong', () => {
    const good = encodeBatch('s', [{ seq: 1, method: 'PUT', path: '/kv/a', body: Buffer.from('abc') }]);
    const bad = (buf: Buffer): SeqHeaderError => {
      try {
        decodeBatch(buf);
      } catch (err) {
        return err as SeqHeaderError;
      }
      throw new Error('accepted');
    };
    expect(bad(Buffer.from('no newline')).message).toMatch(/no header line/);
    expect(bad(good.subarray(0, good.length - 1)).message).toMatch(/mutation 0: length 3 runs past the end/);
    expect(bad(Buffer.concat([good, Buffer.from('x')])).message).toMatch(/1 bytes after the last body/);
    const unordered = encodeBatch('s', [
      { seq: 2, method: 'PUT', path: '/kv/a' },
      { seq: 2, method: 'PUT', path: '/kv/b' },
    ]);
    const err = bad(unordered);
    expect(err).toBeInstanceOf(SeqHeaderError);
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/mutation 1: seq must be a positive integer above the previous one/);
  });

  it('applies entries through the gate in seq order and stops the answer at the first failure', async () => {
    const gate = new SeqGate({ stream: 's' });
    const applied: number[] = [];
    const batch = decodeBatch(
      encodeBatch(
        's',
        [1, 2, 3, 4, 5].map((seq) => ({ seq, method: 'PUT', path: `/kv/${seq}`, body: Buffer.from('v') })),
      ),
    );
    const attempts = new Map<number, number>();
    const applyOne = async (e: { seq: number; headers: Record<string, string> }): Promise<number> => {
      attempts.set(e.seq, (attempts.get(e.seq) ?? 0) + 1);
      // Seq 3 fails before taking its turn, the first time only (e.g. a busy disk).
      if (e.seq === 3 && attempts.get(3) === 1) throw new Error('busy');
      const s = readSequence(e.headers) as Sequenced;
      const t = await gate.enter(s);
      if (t.turn !== 'run') return 200;
      await Promise.resolve();
      applied.push(s.seq);
      gate.complete(s.seq, 200);
      return 201;
    };
    const first = await applyBatch(batch, applyOne);
    expect(first).toEqual({
      appliedSeq: 2,
      results: [
        { seq: 1, status: 201 },
        { seq: 2, status: 201 },
        { seq: 3, status: 500 },
      ],
    });
    // The rest is sent again (as the router does): applied once each, in order.
    const again = await applyBatch({ stream: 's', entries: batch.entries.slice(2) }, applyOne);
    expect(again.appliedSeq).toBe(5);
    expect(again.results.map((r) => r.seq)).toEqual([3, 4, 5]);
    expect(applied).toEqual([1, 2, 3, 4, 5]);
  });

  it('takes statuses given at once beside promised ones, in seq order, a throw or a non-number as 500', async () => {
    const gate = new SeqGate({ stream: 's' });
    const batch = decodeBatch(
      encodeBatch(
        's',
        [1, 2, 3, 4].map((seq) => ({ seq, method: 'PUT', path: `/kv/${seq}`, body: Buffer.from('v') })),
      ),
    );
    const applied: number[] = [];
    let waited = 0;
    // Seq 2 takes its turn late (its handler awaits first); 3 then cannot be decided at once.
    const applyOne = (e: { seq: number; headers: Record<string, string> }): number | Promise<number> => {
      const s = readSequence(e.headers) as Sequenced;
      const consume = (): number => {
        applied.push(s.seq);
        gate.complete(s.seq, 200);
        return 200 + s.seq;
      };
      if (s.seq === 2) return Promise.resolve().then(() => gate.enter(s).then(consume));
      const t = gate.tryEnter(s);
      if (t) return consume();
      waited++;
      return gate.enter(s).then(consume);
    };
    expect(await applyBatch(batch, applyOne)).toEqual({
      appliedSeq: 4,
      results: [1, 2, 3, 4].map((seq) => ({ seq, status: 200 + seq })),
    });
    expect(applied).toEqual([1, 2, 3, 4]);
    expect(waited).toBe(2); // 3 and 4 waited for 2; 1 was decided at once
    const broken = decodeBatch(
      encodeBatch(
        's',
        [5, 6].map((seq) => ({ seq, method: 'PUT', path: '/kv/x', body: Buffer.from('v') })),
      ),
    );
    const thrown = await applyBatch(broken, () => {
      throw new Error('disk');
    });
    expect(thrown).toEqual({ appliedSeq: 0, results: [{ seq: 5, status: 500 }] });
    const notANumber = await applyBatch(broken, () => Promise.resolve(undefined as unknown as number));
    expect(notANumber.results).toEqual([{ seq: 5, status: 500 }]);
  });
});
