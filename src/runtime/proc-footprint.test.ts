import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAddress, librariesInMaps, parseProcNetTcp, readFootprint } from './proc-footprint.js';

describe('/proc footprint parsing', () => {
  it('decodes IPv4 and IPv6 addresses of /proc/net/tcp (little-endian words)', () => {
    expect(decodeAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeAddress('00000000000000000000000001000000')).toBe('[::1]');
    expect(decodeAddress('0000000000000000FFFF00000100007F')).toBe('127.0.0.1');
  });

  it('reads listening and established sockets with their inodes', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0',
      '   1: 0100007F:D431 0100007F:1538 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0 20 4 30 10 -1',
    ].join('\n');
    expect(parseProcNetTcp(text)).toEqual([
      { localPort: 8080, remote: '0.0.0.0', remotePort: 0, state: '0A', inode: 4242 },
      { localPort: 54321, remote: '127.0.0.1', remotePort: 5432, state: '01', inode: 4243 },
    ]);
  });

  it('lists the shared libraries of /proc/<pid>/maps once each', () => {
    const maps = [
      '7f0000000000-7f0000001000 r--p 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f0000001000-7f0000002000 r-xp 00001000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f0000003000-7f0000004000 r--p 00000000 08:01 124 /usr/bin/node',
      '7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0 [stack]',
    ].join('\n');
    expect(librariesInMaps(maps)).toEqual(['/usr/lib/x86_64-linux-gnu/libc.so.6']);
  });
});

describe('readFootprint (this test process, real /proc)', () => {
  let dir: string;
  let server: Server;
  let client: Socket;
  let fd: number;
  let file: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-footprint-'));
    file = join(dir, 'kept-open.dat');
    fd = openSync(file, 'w');
    server = createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    client = connect((server.address() as { port: number }).port, '127.0.0.1');
    await new Promise<void>((r) => client.once('connect', () => r()));
  });
  afterAll(async () => {
    client?.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (fd !== undefined) closeSync(fd);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds the port it listens on, the connection it holds, the file it keeps open and its libraries', async () => {
    const port = (server.address() as { port: number }).port;
    const fp = await readFootprint([process.pid]);
    expect(fp.listening).toContain(port);
    expect(fp.connected).toContain(`127.0.0.1:${port}`);
    expect(fp.files).toContain(file);
    expect(fp.libraries.some((l) => /libc\.so/.test(l))).toBe(true);
  });

  it('reads nothing of a process that does not exist', async () => {
    expect(await readFootprint([2 ** 22 + 7])).toEqual({
      listening: [],
      connected: [],
      libraries: [],
      files: [],
    });
  });
});
