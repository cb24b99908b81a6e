import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isUnderstudyError } from '../errors/index.js';
import { allocatePort, assertPortFree } from './ports.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('ports', () => {
  it('allocates a port that can then be bound', async () => {
    const port = await allocatePort();
    expect(port).toBeGreaterThan(0);
    await expect(assertPortFree(port)).resolves.toBeUndefined();
  });

  it('rejects a port that is in use with UNDERSTUDY_ERR_PORT naming the port', async () => {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const err: unknown = await assertPortFree(port).catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_PORT')).toBe(true);
    expect((err as Error).message).toContain(String(port));
    expect((err as Error).message).toContain('in use');
  });

  it('rejects an out-of-range port', async () => {
    const err: unknown = await assertPortFree(70_000).catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_PORT')).toBe(true);
  });

  it('fails to allocate on an address this host does not have', async () => {
    const err: unknown = await allocatePort('192.0.2.1').catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_PORT')).toBe(true);
  });
});
