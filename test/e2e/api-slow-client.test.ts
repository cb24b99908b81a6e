// A client that trickles its request is cut at the API's request deadline, counted from its first byte
// (node:http only looks for late connections every `connectionsCheckingInterval`: 30 s by default).
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiRig, type ApiRig } from './lib/api-rig.js';

const DEADLINE_MS = 600;

/** Sends `text` one byte every `everyMs` until the server closes; what it answered and when. */
function trickle(
  port: number,
  text: string,
  everyMs: number,
): Promise<{ answer: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const c = connect(port, '127.0.0.1');
    let i = 0;
    let answer = '';
    const timer = setInterval(() => {
      if (i < text.length && !c.destroyed) c.write(text[i++] as string);
    }, everyMs);
    const giveUp = setTimeout(() => c.destroy(), 20 * DEADLINE_MS);
    c.on('data', (b) => (answer += b.toString('latin1')));
    c.on('error', () => {});
    c.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
  });
}

describe('a slow client of the control API', () => {
  let rig: ApiRig;
  beforeAll(async () => {
    rig = await startApiRig(mkdtempSync(join(tmpdir(), 'understudy-api-slow-')), {
      requestTimeoutMs: DEADLINE_MS,
    });
  });
  afterAll(() => rig.close());

  it('is answered 408 and closed when its request head trickles past the deadline', async () => {
    const head = `GET /v1/services HTTP/1.1\r\nHost: 127.0.0.1:${rig.port}\r\nX-Slow: ${'a'.repeat(200)}\r\n\r\n`;
    const r = await trickle(rig.port, head, 50);
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
    // 408, not 401: cut before the whole head (about 11 s at this pace) arrived.
    expect(rig.stub.calls).toEqual([]);
  });

  it('is answered 408 and closed when its body trickles past the deadline', async () => {
    const head =
      `POST /v1/shutdown HTTP/1.1\r\nHost: 127.0.0.1:${rig.port}\r\nAuthorization: Bearer ${rig.token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: 300\r\n\r\n`;
    const r = await trickle(rig.port, head + `{"reason":"${'a'.repeat(284)}"}`, 5);
    expect(r.answer).toMatch(/408/);
    expect(rig.stub.calls.filter((c) => c.method === 'onShutdown')).toEqual([]);
  });
});
