// The sync handshake against peers without the key: a replayed hello, a connection that replaces
// another, what travels on the wire, and what an unauthenticated peer can hold on the primary.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdtemp, mkdir, readdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SyncSource, SyncTarget, type SyncSourceOptions } from '../../src/sync/index.js';
import { ErrorCode, isUnderstudyError, type UnderstudyError } from '../../src/errors/index.js';
import {
  FRAME_HEADER_BYTES,
  FRAME_MAC_BYTES,
  FrameType,
  PROTOCOL_VERSION,
} from '../../src/sync/frame-codec.js';
import { converge } from './fixtures/sync/converge.js';

const KEY = 'handshake-test-service-key-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A TCP proxy that records, per connection, the bytes each side sent; its connections can be cut. */
async function recordingProxy(port: number) {
  const recorded: { up: Buffer[]; down: Buffer[] }[] = [];
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    const rec = { up: [] as Buffer[], down: [] as Buffer[] };
    recorded.push(rec);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('data', (d: Buffer) => {
      rec.up.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      rec.down.push(d);
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    server,
    recorded,
    cut: (): void => {
      for (const [c, u] of [...pairs]) {
        c.destroy();
        u.destroy();
      }
      pairs.clear();
    },
  };
}

/** A primary and an echo connected through a recording proxy. */
async function rig(sourceOptions: Partial<SyncSourceOptions> = {}) {
  const base = await mkdtemp(join(tmpdir(), 'us-sync-hs-'));
  const a = join(base, 'primary');
  const b = join(base, 'echo');
  await mkdir(a);
  const source = await SyncSource.create({ dir: a, key: KEY, scanIntervalMs: 0, ...sourceOptions });
  const errors: UnderstudyError[] = [];
  source.on('error', (e: UnderstudyError) => errors.push(e));
  const px = await recordingProxy(source.port);
  const target = await SyncTarget.create({
    dir: b,
    key: KEY,
    port: px.port,
    durable: false,
    reconnectDelayMs: 20,
  });
  cleanups.push(async () => {
    await target.close();
    await source.close();
    await new Promise((r) => px.server.close(r));
    await rm(base, { recursive: true, force: true });
  });
  return { base, a, b, source, target, px, errors };
}

/** The first frame (the hello) of what a peer sent on one connection. */
function firstFrame(bytes: Buffer): Buffer {
  const len = bytes.readUInt32BE(12);
  return bytes.subarray(0, FRAME_HEADER_BYTES + len + FRAME_MAC_BYTES);
}

/** A raw socket to the primary, with what it received and whether it was closed. */
async function rawPeer(port: number) {
  const socket = connect({ host: '127.0.0.1', port });
  const peer = { socket, received: [] as Buffer[], closed: false };
  socket.on('data', (d: Buffer) => peer.received.push(d));
  socket.on('close', () => (peer.closed = true));
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  cleanups.push(async () => void socket.destroy());
  return peer;
}

describe('sync handshake', () => {
  it('a replayed hello neither resets, attaches nor disturbs the real echo', async () => {
    const { a, b, source, target, px } = await rig({ handshakeTimeoutMs: 60_000 });
    let connected = 0;
    source.on('connected', () => connected++);
    await writeFile(join(a, 'seed'), 'x');
    await converge(a, b, source);
    // A second connection of the real echo resumes: its hello names the current lineage and position.
    const c0 = connected;
    px.cut();
    await until(() => connected > c0 && source.stats()[0]?.connected === true);
    await converge(a, b, source);
    const hellos = px.recorded.map((r) => firstFrame(Buffer.concat(r.up)));
    expect(hellos).toHaveLength(2);
    const lineage = target.stats().lineage;
    const applied = target.stats().batchesApplied;
    const before = source.stats()[0];
    const c1 = connected;

    // Replay both recorded hellos (a first sync's and a resume's) from fresh sockets, without the key.
    const replays: Awaited<ReturnType<typeof rawPeer>>[] = [];
    for (const hello of hellos) {
      const peer = await rawPeer(source.port);
      peer.socket.write(hello);
      replays.push(peer);
    }
    // Each gets the primary's challenge, which it cannot answer.
    await until(() => replays.every((p) => p.received.length > 0));

    // The real echo still receives later updates, in the same lineage, over the same connection.
    await writeFile(join(a, 'after-replay'), randomBytes(10_000));
    await converge(a, b, source, 15_000);
    expect(target.stats().lineage).toBe(lineage);
    expect(target.stats().batchesApplied).toBeGreaterThan(applied);
    const after = source.stats()[0];
    expect(source.stats()).toHaveLength(1);
    expect(after?.connected).toBe(true);
    expect(after?.lastAckedSeq).toBeGreaterThan(before?.lastAckedSeq ?? 0);
    expect(after?.supersededConnections).toBe(0);
    expect(connected).toBe(c1);
    expect(source.connections().pending).toBe(2);
    // The replays received the challenge only: no batch, no welcome.
    for (const p of replays) {
      const got = Buffer.concat(p.received);
      expect(got[3]).toBe(FrameType.HelloSource);
      expect(got.length).toBe(FRAME_HEADER_BYTES + got.readUInt32BE(12) + FRAME_MAC_BYTES);
    }
  });

  it('a new authenticated connection of an echo closes the one it supersedes', async () => {
    const { a, b, base, source, target } = await rig();
    await writeFile(join(a, 'seed'), 'x');
    await converge(a, b, source);
    const superseded: string[] = [];
    source.on('superseded', (echo: string) => superseded.push(echo));
    let dropped = 0;
    target.on('disconnected', () => dropped++);
    // Another process claims the same echo id (a restarted echo whose old connection lingers).
    const second = await SyncTarget.create({
      dir: join(base, 'echo2'),
      key: KEY,
      port: source.port,
      durable: false,
      reconnectDelayMs: 60_000,
    });
    cleanups.push(() => second.close());
    await until(() => superseded.length > 0);
    expect(superseded[0]).toBe('echo');
    await until(() => dropped > 0);
    expect(source.stats()[0]?.supersededConnections).toBeGreaterThanOrEqual(1);
  });

  it('sends file contents encrypted: a distinctive content never appears on the wire', async () => {
    const { a, b, source, px } = await rig({ compression: 'none' });
    const marker = Buffer.from(`UNDERSTUDY-CANARY-${randomBytes(8).toString('hex')}`);
    await writeFile(join(a, 'secret.txt'), Buffer.concat([marker, randomBytes(300), marker]));
    await writeFile(join(a, 'big.bin'), Buffer.concat([randomBytes(200_000), marker, randomBytes(200_000)]));
    await converge(a, b, source);
    const wire = Buffer.concat(px.recorded.flatMap((r) => [...r.down, ...r.up]));
    expect(wire.length).toBeGreaterThan(400_000);
    expect(wire.includes(marker)).toBe(false);
    expect(wire.includes(Buffer.from('secret.txt'))).toBe(false);
  });
});

/** A server that sends each connection `bytes` (nothing if empty) and otherwise ignores it. */
async function replayServer(bytes: Buffer): Promise<Server> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    if (bytes.length > 0) s.write(bytes);
    cleanups.push(async () => void s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  return server;
}
const portOf = (server: Server): number => {
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
};

describe('the echo before the primary proved the key', () => {
  it('applies nothing from a primary that replays a recorded session', async () => {
    const { a, b, base, source, px } = await rig();
    await writeFile(join(a, 'recorded.txt'), 'recorded content');
    await converge(a, b, source);
    const server = await replayServer(Buffer.concat(px.recorded[0]?.down ?? []));
    const victim = join(base, 'victim');
    const echo = await SyncTarget.create({ dir: victim, key: KEY, port: portOf(server), durable: false });
    cleanups.push(() => echo.close());
    const security: string[] = [];
    echo.on('security', (e: { code: string }) => security.push(e.code));
    await until(() => security.length > 0);
    expect(security[0]).toBe(ErrorCode.SyncFrame);
    expect(await readdir(victim)).toEqual([]);
    expect(echo.stats().batchesApplied).toBe(0);
  });

  it('drops a primary that accepts the connection and says nothing once the handshake deadline passes', async () => {
    const base = await mkdtemp(join(tmpdir(), 'us-sync-hs-'));
    cleanups.push(() => rm(base, { recursive: true, force: true }));
    const server = await replayServer(Buffer.alloc(0));
    const echo = await SyncTarget.create({
      dir: join(base, 'echo'),
      key: KEY,
      port: portOf(server),
      durable: false,
      handshakeTimeoutMs: 200,
      reconnectDelayMs: 60_000,
    });
    cleanups.push(() => echo.close());
    const drops: unknown[] = [];
    echo.on('disconnected', (err: unknown) => drops.push(err));
    await until(() => drops.length > 0);
    expect(isUnderstudyError(drops[0], ErrorCode.SyncTransport)).toBe(true);
  });
});

describe('before authentication', () => {
  async function primary(options: Partial<SyncSourceOptions>) {
    const base = await mkdtemp(join(tmpdir(), 'us-sync-preauth-'));
    const source = await SyncSource.create({ dir: join(base, 'p'), key: KEY, scanIntervalMs: 0, ...options });
    const errors: UnderstudyError[] = [];
    source.on('error', (e: UnderstudyError) => errors.push(e));
    cleanups.push(async () => {
      await source.close();
      await rm(base, { recursive: true, force: true });
    });
    return { source, errors };
  }

  it('refuses an oversized handshake frame from its header, without waiting for its body', async () => {
    const { source, errors } = await primary({ maxHandshakeFrameBytes: 4096 });
    const peer = await rawPeer(source.port);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.write('US', 0, 'latin1');
    header[2] = PROTOCOL_VERSION;
    header[3] = FrameType.HelloTarget;
    header.writeUInt32BE(1024 * 1024, 12); // 1 MiB: under the session limit, over the handshake one
    peer.socket.write(header);
    await until(() => peer.closed);
    expect(errors.some((e) => isUnderstudyError(e, ErrorCode.SyncFrame) && /exceeds/.test(e.message))).toBe(
      true,
    );
  });

  it('closes a peer that connects and says nothing once the handshake deadline passes', async () => {
    const { source, errors } = await primary({ handshakeTimeoutMs: 200 });
    const peer = await rawPeer(source.port);
    await until(() => peer.closed);
    expect(errors.some((e) => isUnderstudyError(e, ErrorCode.SyncTransport))).toBe(true);
    expect(source.connections().open).toBe(0);
  });

  it.each([
    ['unauthenticated connections', { maxPendingConnections: 2 }],
    ['connections', { maxConnections: 2 }],
  ] as const)('refuses %s beyond the cap, and accepts again below it', async (_name, caps) => {
    const { source, errors } = await primary({ handshakeTimeoutMs: 60_000, ...caps });
    const first = await rawPeer(source.port);
    const second = await rawPeer(source.port);
    await until(() => source.connections().open === 2);
    const third = await rawPeer(source.port);
    await until(() => third.closed);
    expect(first.closed || second.closed).toBe(false);
    expect(source.connections()).toMatchObject({ open: 2, refused: 1 });
    expect(errors.some((e) => isUnderstudyError(e, ErrorCode.SyncTransport))).toBe(true);
    first.socket.destroy();
    await until(() => source.connections().open === 1);
    const fourth = await rawPeer(source.port);
    await until(() => source.connections().open === 2);
    expect(fourth.closed).toBe(false);
  });
});
