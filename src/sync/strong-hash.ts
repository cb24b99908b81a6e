import xxhash from 'xxhash-wasm';

const hasher = await xxhash();

/**
 * 64-bit xxHash of a byte range: the strong per-block hash of a {@link FileSignature}.
 * Not cryptographic: a whole-file SHA-256 verifies every file after apply.
 */
export function strongHash(data: Uint8Array): bigint {
  return hasher.h64Raw(data);
}
