import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { ErrorCode } from '../errors/index.js';
import { FrameType, type Frame, type FrameTypeValue } from './frame-codec.js';
import { FramedConnection } from './framed-connection.js';
import { SourceHandshake, TargetHandshake, transcriptHash } from './handshake.js';
import {
  decodeHelloSource,
  encodeConfirm,
  encodeHelloTarget,
  type HelloTarget,
  type Welcome,
} from './messages.js';

const key = randomBytes(32);

/** A stand-in connection that records what the handshake does to it. */
function recorder() {
  const sent: { type: FrameTypeValue; payload: Uint8Array }[] = [];
  const log: string[] = [];
  const conn = {
    sendNow: (type: FrameTypeValue, payload: Uint8Array) => sent.push({ type, payload }),
    setSessionKeys: () => log.push('session keys'),
    authenticated: () => log.push('authenticated'),
  } as unknown as FramedConnection;
  return { conn, sent, log };
}

const frame = (type: FrameTypeValue, seq: number, payload: Buffer): Frame => ({ type, seq, payload });
const hello = encodeHelloTarget({ targetId: 'echo', nonce: randomBytes(16), lineage: 'abc', lastApplied: 3 });

describe('sync handshake', () => {
  it('returns the hello only for a confirmation of this handshake, and marks the peer authenticated then', () => {
    const { conn, sent, log } = recorder();
    const h = new SourceHandshake(key, conn);
    expect(h.onFrame(frame(FrameType.HelloTarget, 0, hello))).toBeUndefined();
    expect(log).toEqual(['session keys']);
    expect(() => h.welcome({ lineage: 'x', resume: false })).toThrow(
      expect.objectContaining({ code: ErrorCode.SyncFrame }),
    );
    const challenge = sent[0];
    expect(challenge?.type).toBe(FrameType.HelloSource);
    expect(decodeHelloSource(challenge?.payload ?? Buffer.alloc(0)).nonce).toHaveLength(16);
    const confirm = encodeConfirm({
      transcript: transcriptHash(hello, challenge?.payload ?? Buffer.alloc(0)),
    });
    const m = h.onFrame(frame(FrameType.Confirm, 1, confirm));
    expect(m).toMatchObject({ targetId: 'echo', lineage: 'abc', lastApplied: 3 });
    expect(log).toEqual(['session keys', 'authenticated']);
  });

  it.each([
    ['a confirmation of another handshake', () => randomBytes(32)],
    [
      'a confirmation of the same hello answered by another challenge',
      () => transcriptHash(hello, randomBytes(36)),
    ],
  ])('refuses %s and never authenticates', (_name, transcript) => {
    const { conn, log } = recorder();
    const h = new SourceHandshake(key, conn);
    h.onFrame(frame(FrameType.HelloTarget, 0, hello));
    expect(() => h.onFrame(frame(FrameType.Confirm, 1, encodeConfirm({ transcript: transcript() })))).toThrow(
      expect.objectContaining({ code: ErrorCode.SyncFrame }),
    );
    expect(log).not.toContain('authenticated');
  });

  it('refuses anything but a confirmation after the hello (a second hello, a manifest)', () => {
    for (const type of [FrameType.HelloTarget, FrameType.Manifest, FrameType.Ack]) {
      const { conn, log } = recorder();
      const h = new SourceHandshake(key, conn);
      h.onFrame(frame(FrameType.HelloTarget, 0, hello));
      expect(() => h.onFrame(frame(type, 1, hello))).toThrow(
        expect.objectContaining({ code: ErrorCode.SyncFrame }),
      );
      expect(log).not.toContain('authenticated');
    }
  });

  it('completes between a real echo and primary over a socket, each side authenticated only at its end', async () => {
    const opts = { key, maxPayloadBytes: 1 << 20, maxHandshakeBytes: 16 * 1024, handshakeTimeoutMs: 5000 };
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const client = connect({ host: '127.0.0.1', port });
    const serverSocket = await accepted;
    let confirmed: HelloTarget | undefined;
    let welcomed: Welcome | undefined;
    const done = new Promise<void>((resolve, reject) => {
      const source: FramedConnection = new FramedConnection(
        serverSocket,
        opts,
        (f) => {
          confirmed = sh.onFrame(f);
          if (confirmed) sh.welcome({ lineage: 'L1', resume: false });
        },
        (err) => err && reject(err),
      );
      const sh = new SourceHandshake(key, source);
      const target: FramedConnection = new FramedConnection(
        client,
        opts,
        (f) => {
          welcomed = th.onFrame(f);
          if (welcomed) resolve();
        },
        (err) => err && reject(err),
      );
      const th = new TargetHandshake(key, target);
      void th.start({ targetId: 'e1', lineage: '', lastApplied: 0 });
    });
    await done;
    expect(confirmed?.targetId).toBe('e1');
    expect(welcomed).toEqual({ lineage: 'L1', resume: false });
    client.destroy();
    serverSocket.destroy();
    await new Promise((r) => server.close(r));
  });
});
