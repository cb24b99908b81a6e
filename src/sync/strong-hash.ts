import xxhash from 'xxhash-wasm';

const hasher = await xxhash();

/**
 * 64-bit xxHash of a byte range: the strong per-block hash of a {@link FileSignature}.
 * Not cryptographic: a whole-file SHA-256 verifies every file after apply.
 */
export function strongHash(data: Uint8Array): bigint {
  return hasher.h64Raw(data);
}

/** {@link strongHash} of a large buffer, fed in 1 MiB pieces so WebAssembly memory stays small. */
export function wholeHash(data: Uint8Array): bigint {
  if (data.length <= 1 << 20) return hasher.h64Raw(data);
  const h = hasher.create64();
  for (let i = 0; i < data.length; i += 1 << 20) h.update(data.subarray(i, i + (1 << 20)));
  return h.digest();
}

/** A streaming {@link wholeHash}; `digest()` does not end it, so a prefix's hash can be read on the way. */
export interface WholeHasher {
  update(data: Uint8Array): void;
  digest(): bigint;
}

/** Starts a streaming {@link wholeHash} (fed in 1 MiB pieces at most). */
export function createWholeHash(): WholeHasher {
  const h = hasher.create64();
  return {
    update(data) {
      for (let i = 0; i < data.length; i += 1 << 20) h.update(data.subarray(i, i + (1 << 20)));
    },
    digest: () => h.digest(),
  };
}
