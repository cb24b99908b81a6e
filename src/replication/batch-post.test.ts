import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_ANSWER_BYTES, postBuffered } from './batch-post.js';

const servers: Server[] = [];
const pools: Pool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A real HTTP server answering every POST with `answer(body, headers)`. */
async function server(
  answer: (body: Buffer, headers: Record<string, unknown>) => { status: number; body: Buffer | string },
): Promise<Pool> {
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const a = answer(Buffer.concat(chunks), req.headers);
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body);
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const pool = new Pool(`http://127.0.0.1:${(s.address() as AddressInfo).port}`, { connections: 2 });
  pools.push(pool);
  return pool;
}

describe('postBuffered', () => {
  it('sends the body with the given headers and gives back the status and the whole answer, over one keep-alive connection', async () => {
    const pool = await server((body, headers) => ({
      status: body.length === 0 ? 400 : 200,
      body: JSON.stringify({ got: body.toString(), stream: headers['x-understudy-stream'] }),
    }));
    const headers = ['content-type', 'application/x-understudy-batch', 'x-understudy-stream', 's1'];
    for (const v of ['a', 'bb']) {
      const answer = await postBuffered(pool, '/_understudy/batch', headers, Buffer.from(v), 1000);
      expect(answer).toEqual({ status: 200, text: JSON.stringify({ got: v, stream: 's1' }) });
    }
    expect(await postBuffered(pool, '/x', headers, Buffer.alloc(0), 1000)).toMatchObject({ status: 400 });
  });

  it('refuses an answer larger than MAX_ANSWER_BYTES instead of buffering it', async () => {
    const pool = await server(() => ({ status: 200, body: Buffer.alloc(MAX_ANSWER_BYTES + 1024, 'x') }));
    await expect(postBuffered(pool, '/', [], Buffer.from('x'), 5000)).rejects.toThrow(/larger than/);
  });
});
