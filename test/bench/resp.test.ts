import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { peerTable, type PeerRow } from '../../bench/peers.js';
import { RespError, encodeCommand, parseInfo, parseReply } from '../../bench/lib/resp.js';

describe('the RESP client of the peers bench', () => {
  it('encodes a command as an array of bulk strings, counting bytes not characters', () => {
    expect(encodeCommand(['SET', 'k', 'é']).toString()).toBe('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n');
  });

  it('parses every reply type, and waits for a reply split anywhere', () => {
    const wire = Buffer.from('+OK\r\n-READONLY no\r\n:3\r\n$-1\r\n*2\r\n$1\r\na\r\n$2\r\nbc\r\n');
    const parseAll = (buf: Buffer): { replies: unknown[]; ends: number[] } => {
      const out: unknown[] = [];
      const ends: number[] = [];
      for (let r = parseReply(buf, 0); r; r = parseReply(buf, r.next)) {
        out.push(r.reply);
        ends.push(r.next);
      }
      return { replies: out, ends };
    };
    const all = parseAll(wire);
    expect(all.replies).toEqual(['OK', new RespError('READONLY no'), 3, null, ['a', 'bc']]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: wire.length }), (cut) => {
        // A prefix gives exactly the replies wholly inside it: none invented from a partial one.
        const whole = all.ends.filter((e) => e <= cut).length;
        expect(parseAll(wire.subarray(0, cut)).replies).toEqual(all.replies.slice(0, whole));
      }),
      { numRuns: 200 },
    );
    expect(parseReply(Buffer.from('$5\r\nab'))).toBeUndefined();
  });

  it('reads INFO fields', () => {
    expect(parseInfo('# Replication\r\nrole:slave\r\nmaster_port:7000\r\n')).toEqual({
      role: 'slave',
      master_port: '7000',
    });
  });
});

describe('the peers table', () => {
  it('shows empty measurements as a dash and lists why a row is empty', () => {
    const rows: PeerRow[] = [
      {
        system: 'a',
        service: 'redis',
        fault: 'sigkill',
        runs: 2,
        p50Ms: 120,
        p99Ms: 2500,
        lostAcked: 1,
        splitBrain: 0,
      },
      {
        system: 'b',
        service: 'redis',
        fault: 'sigstop',
        runs: 0,
        p50Ms: NaN,
        p99Ms: NaN,
        lostAcked: 0,
        splitBrain: 0,
        skipped: 'not installed: redis-sentinel',
      },
    ];
    const table = peerTable(rows).split('\n');
    expect(table[1]).toMatch(/^redis\s+a\s+sigkill\s+2\s+0\.120 s\s+2\.500 s\s+1\s+—\s+0\s*$/);
    expect(table[2]).toMatch(/^redis\s+b\s+sigstop\s+0\s+—\s+—\s+0\s+—\s+0\s*$/);
    expect(table.at(-1)).toBe('  redis / b / sigstop: not installed: redis-sentinel');
  });
});
