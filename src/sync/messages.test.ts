import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeBatchOps,
  decodeManifest,
  encodeBatchOps,
  encodeManifest,
  type BatchOp,
  type ManifestEntry,
} from './messages.js';
import { isUnderstudyError, ErrorCode } from '../errors/index.js';

const path = fc
  .array(fc.stringMatching(/^[a-zA-Z0-9._-]{1,12}$/), { minLength: 1, maxLength: 4 })
  .map((s) => s.join('/'));
const mode = fc.integer({ min: 0, max: 0o7777 });
const op: fc.Arbitrary<BatchOp> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), path }),
  fc.record({ op: fc.constant('mkdir' as const), path, mode }),
  fc.record({ op: fc.constant('chmod' as const), path, mode }),
  fc.record({
    op: fc.constant('symlink' as const),
    path,
    target: fc.string({ minLength: 1, maxLength: 40 }),
  }),
  fc.record({
    op: fc.constant('file' as const),
    path,
    mode,
    mtimeMs: fc.nat(2 ** 42),
    base: fc.option(path, { nil: null }),
  }),
);

describe('batch and manifest encoding', () => {
  it('round-trips batch ops', () => {
    fc.assert(
      fc.property(fc.nat(1e9), fc.array(op, { maxLength: 30 }), (seq, ops) => {
        expect(decodeBatchOps(encodeBatchOps(seq, ops))).toEqual({ seq, ops });
      }),
    );
  });

  it('round-trips manifests', () => {
    const entry: fc.Arbitrary<ManifestEntry> = fc.oneof(
      fc.record({
        type: fc.constant('file' as const),
        path,
        mode,
        size: fc.nat(),
        hash: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex')),
      }),
      fc.record({ type: fc.constant('dir' as const), path, mode }),
      fc.record({
        type: fc.constant('symlink' as const),
        path,
        target: fc.string({ minLength: 1, maxLength: 40 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), fc.boolean(), (entries, last) => {
        expect(decodeManifest(encodeManifest(entries, last))).toEqual({ entries, last });
      }),
    );
  });

  it('decodes random bytes to a frame error or a value, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => {
        for (const decode of [decodeBatchOps, decodeManifest]) {
          try {
            decode(bytes);
          } catch (err) {
            expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
