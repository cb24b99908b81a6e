import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import type { FrameAuth } from './frame-codec.js';
import {
  deriveSessionKeys,
  encodeFrame,
  FrameDecoder,
  FrameType,
  FRAME_HEADER_BYTES,
  type Frame,
} from './frame-codec.js';
import { isUnderstudyError, ErrorCode } from '../errors/index.js';

const key = randomBytes(32);

function decodeAll(bytes: Buffer, chunk = 7, max = 1 << 20, with_: Buffer | FrameAuth = key): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder({ key: with_, maxPayloadBytes: max }, (f) => out.push(f));
  for (let i = 0; i < bytes.length; i += chunk) d.push(bytes.subarray(i, i + chunk));
  return out;
}

describe('frame codec', () => {
  it('round-trips frames split at arbitrary chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 5000 }),
        (payloads, chunk) => {
          const wire = Buffer.concat(payloads.map((p, i) => encodeFrame(key, FrameType.Data, i, p)));
          const frames = decodeAll(wire, chunk);
          expect(frames.map((f) => Buffer.from(f.payload).toString('hex'))).toEqual(
            payloads.map((p) => Buffer.from(p).toString('hex')),
          );
        },
      ),
      { numRuns: 50 },
    );
  });

  it('rejects random bytes with a frame error and never crashes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 4000 }), (bytes) => {
        try {
          decodeAll(Buffer.from(bytes), 13);
        } catch (err) {
          expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('rejects any single-byte mutation of a valid frame', () => {
    const frame = encodeFrame(key, FrameType.Batch, 0, randomBytes(200));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: frame.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (pos, xor) => {
          const bad = Buffer.from(frame);
          bad[pos] = (bad[pos] as number) ^ xor;
          let frames: Frame[] = [];
          let error: unknown;
          try {
            frames = decodeAll(bad);
          } catch (err) {
            error = err;
          }
          // A mutated length may leave the frame incomplete (nothing decoded); otherwise it is rejected.
          expect(frames).toHaveLength(0);
          if (error) expect(isUnderstudyError(error, ErrorCode.SyncFrame)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects an oversized frame from its header alone', () => {
    const header = encodeFrame(key, FrameType.Data, 0, Buffer.alloc(2000)).subarray(0, FRAME_HEADER_BYTES);
    expect(() => decodeAll(header, 100, 1000)).toThrow(
      expect.objectContaining({ code: ErrorCode.SyncFrame }),
    );
  });

  it('rejects a replayed frame by its sequence number', () => {
    const f = encodeFrame(key, FrameType.Ack, 0, Buffer.from([1]));
    expect(() => decodeAll(Buffer.concat([f, f]))).toThrow(
      expect.objectContaining({ code: ErrorCode.SyncFrame }),
    );
  });

  it('rejects a frame authenticated with another key', () => {
    const f = encodeFrame(randomBytes(32), FrameType.Ack, 0, Buffer.from([1]));
    expect(() => decodeAll(f)).toThrow(expect.objectContaining({ code: ErrorCode.SyncFrame }));
  });

  describe('session frames (AES-GMAC, one key per direction)', () => {
    const keys = deriveSessionKeys(key, randomBytes(16), randomBytes(16));
    const toTarget = keys.sourceToTarget;

    it('round-trips frames and rejects any single-byte mutation', () => {
      const payloads = [randomBytes(0), randomBytes(1), randomBytes(5000)];
      const wire = Buffer.concat(payloads.map((p, i) => encodeFrame(toTarget, FrameType.Data, i, p)));
      const got = decodeAll(wire, 333, 1 << 20, toTarget).map((f) => Buffer.from(f.payload).toString('hex'));
      expect(got).toEqual(payloads.map((p) => p.toString('hex')));
      const frame = encodeFrame(toTarget, FrameType.Batch, 0, randomBytes(200));
      for (let pos = 0; pos < frame.length; pos += 7) {
        const bad = Buffer.from(frame);
        bad[pos] = (bad[pos] as number) ^ 0x40;
        let frames: Frame[] = [];
        try {
          frames = decodeAll(bad, 7, 1 << 20, toTarget);
        } catch (err) {
          expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
        }
        expect(frames).toHaveLength(0);
      }
    });

    it('rejects a frame reflected back in the other direction, or from another connection', () => {
      const f = encodeFrame(toTarget, FrameType.Ack, 0, Buffer.from([1]));
      expect(() => decodeAll(f, 7, 1 << 20, keys.targetToSource)).toThrow(
        expect.objectContaining({ code: ErrorCode.SyncFrame }),
      );
      const other = deriveSessionKeys(key, randomBytes(16), randomBytes(16)).sourceToTarget;
      expect(() => decodeAll(f, 7, 1 << 20, other)).toThrow(
        expect.objectContaining({ code: ErrorCode.SyncFrame }),
      );
      // Nor does the handshake's HMAC under the service key (its longer trailer: never complete).
      let frames: Frame[] = [];
      try {
        frames = decodeAll(Buffer.concat([f, Buffer.alloc(16)]));
      } catch (err) {
        expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
      }
      expect(frames).toHaveLength(0);
    });

    it('delivers a large frame read in pieces as those pieces, authenticated, head first', () => {
      const payload = randomBytes(300_000);
      const frame = encodeFrame(toTarget, FrameType.Data, 0, payload);
      for (const chunk of [7, 1000, 65_536]) {
        const got = decodeAll(frame, chunk, 1 << 20, toTarget);
        expect(got).toHaveLength(1);
        const f = got[0] as Frame;
        expect(f.parts && f.parts.length > 1).toBe(true);
        expect((f.parts?.[0] as Buffer).length).toBeGreaterThanOrEqual(32);
        expect(Buffer.concat(f.parts ?? []).equals(payload)).toBe(true);
        expect(f.payload.equals(payload)).toBe(true);
      }
      const bad = Buffer.from(frame);
      bad[200_000] = (bad[200_000] as number) ^ 1;
      expect(() => decodeAll(bad, 65_536, 1 << 20, toTarget)).toThrow(
        expect.objectContaining({ code: ErrorCode.SyncFrame }),
      );
    });

    it('uses the sequence number as nonce: the same payload gets a different trailer per frame', () => {
      const a = encodeFrame(toTarget, FrameType.Ack, 0, Buffer.from([1]));
      const b = encodeFrame(toTarget, FrameType.Ack, 1, Buffer.from([1]));
      expect(a.subarray(-16).equals(b.subarray(-16))).toBe(false);
      expect(toTarget.macBytes).toBe(16);
    });
  });
});
