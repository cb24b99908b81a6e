import { UnderstudyError, ErrorCode } from '../errors/index.js';
import type { CompressionMode } from './compression.js';
import { DEFAULT_PRIORITY_CLASSES, type PriorityClass } from './priority.js';
/** Normalises a per-service key: a string is used as UTF-8 bytes. Thrown (`UNDERSTUDY_ERR_CONFIG`) when shorter than 16 bytes. */
export function serviceKey(key: string | Buffer): Buffer {
  const b = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (b.length < 16) throw new UnderstudyError(ErrorCode.Config, 'the sync key must be at least 16 bytes');
  return b;
}

/** Default of `handshakeTimeoutMs` on both sides: an unauthenticated peer is closed after this. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default of `maxHandshakeFrameBytes` on both sides (a hello is well under 1 KiB). */
export const DEFAULT_MAX_HANDSHAKE_FRAME_BYTES = 16 * 1024;

/**
 * TLS around a sync connection between hosts, with mutual authentication by one CA: each side presents
 * its certificate and verifies the other's against `ca` (the echo also checks that the primary's
 * certificate names the address it connects to). Node `tls` options, PEM strings. The frame protocol
 * (key confirmation, AES-256-GCM) runs inside it unchanged.
 */
export interface SyncTlsOptions {
  /** The CA certificate peers are verified against (PEM). */
  readonly ca: string;
  /** This side's certificate (PEM). */
  readonly cert: string;
  /** This side's private key (PEM). */
  readonly key: string;
}

/** When batches are sent. */
export type SyncMode = 'continuous' | 'relaxed';

/** Options of {@link SyncSource}. */
export interface SyncSourceOptions {
  /** The primary's state directory. */
  readonly dir: string;
  /** Per-service secret shared with the echoes (at least 16 bytes; session keys are derived from it). */
  readonly key: string | Buffer;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one (see `port`). @default 0 */
  readonly port?: number;
  /** `continuous` sends as soon as changes settle; `relaxed` sends on the interval only. @default 'continuous' */
  readonly mode?: SyncMode;
  /**
   * Continuous mode: coalescing window, the quiet time before a batch is cut when none is in flight
   * (changes that arrive while one is in flight are cut as soon as it is acknowledged). 0 cuts at
   * the end of the event-loop turn that brought the first change, with every event read in that turn.
   * @default 0
   */
  readonly debounceMs?: number;
  /** Continuous mode: longest a change waits while changes keep coming or a batch is in flight. @default 25 */
  readonly maxDelayMs?: number;
  /** Relaxed mode: sync interval at zero utilisation. @default 10000 */
  readonly intervalMs?: number;
  /** Relaxed mode: sync early once this many changed bytes are estimated pending. @default 64 MiB */
  readonly bytesThreshold?: number;
  /** Primary utilisation 0..1; as it rises the relaxed interval shrinks (down to 10% at 1). */
  readonly utilisation?: () => number;
  /** Optional bandwidth cap in bytes per second (token bucket); null for none. @default null */
  readonly bandwidthBytesPerSec?: number | null;
  /** Priority classes, first sent first. @default DEFAULT_PRIORITY_CLASSES (data, code, config) */
  readonly priorities?: readonly PriorityClass[];
  /** Glob patterns never replicated. @default [] */
  readonly ignore?: readonly string[];
  /** Period of the safety-net full scan; 0 disables. @default 30000 */
  readonly scanIntervalMs?: number;
  /** Use inotify watches (false: scan only). @default true */
  readonly watch?: boolean;
  /** Unacknowledged batches allowed in flight per echo. @default 8 */
  readonly window?: number;
  /** Largest frame payload sent or accepted. @default 17 MiB */
  readonly maxFrameBytes?: number;
  /** Data bytes per DATA frame. @default 1 MiB */
  readonly frameDataBytes?: number;
  /** File content bytes per batch (bounds memory and lets priorities act under a cap). @default 64 MiB */
  readonly maxBatchBytes?: number;
  /**
   * New files at least this big (of a size no file on the echo has, so no copy of one) are sent while
   * they are read, instead of read and hashed whole first; 0 turns it off. @default 8 MiB
   */
  readonly streamFromBytes?: number;
  /** @default 'auto' */
  readonly compression?: CompressionMode;
  /**
   * An echo that has not completed the handshake (proved it holds the key for its connection)
   * within this many milliseconds is disconnected. @default 10000
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * Largest frame payload accepted from an echo before it is authenticated; a larger frame is refused
   * from its header, before it is buffered. @default 16 KiB
   */
  readonly maxHandshakeFrameBytes?: number;
  /** Connections the listener holds at once, authenticated or not; more are closed at once. @default 64 */
  readonly maxConnections?: number;
  /**
   * Connections still in their handshake (not yet authenticated) the listener holds at once; more are
   * closed at once, so unauthenticated peers cannot crowd out the echoes. @default 16
   */
  readonly maxPendingConnections?: number;
  /**
   * Accept echoes over TLS only, each with a certificate of `tls.ca` (cross-host sync). A peer without
   * one never reaches the frame protocol. @default none: plain TCP (the frames are still encrypted)
   */
  readonly tls?: SyncTlsOptions;
  /** Stops the primary side when aborted. */
  readonly signal?: AbortSignal;
}

/** {@link SyncSourceOptions} with defaults applied. */
export type ResolvedSourceOptions = Required<
  Omit<SyncSourceOptions, 'signal' | 'key' | 'utilisation' | 'bandwidthBytesPerSec' | 'tls'>
> & {
  readonly key: Buffer;
  readonly tls: SyncTlsOptions | undefined;
  readonly utilisation: (() => number) | undefined;
  readonly bandwidthBytesPerSec: number | null;
};

/** Applies defaults once. */
export function resolveSourceOptions(o: SyncSourceOptions): ResolvedSourceOptions {
  return {
    dir: o.dir,
    key: serviceKey(o.key),
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    mode: o.mode ?? 'continuous',
    debounceMs: o.debounceMs ?? 0,
    maxDelayMs: o.maxDelayMs ?? 25,
    intervalMs: o.intervalMs ?? 10_000,
    bytesThreshold: o.bytesThreshold ?? 64 * 1024 * 1024,
    utilisation: o.utilisation,
    bandwidthBytesPerSec: o.bandwidthBytesPerSec ?? null,
    priorities: o.priorities ?? DEFAULT_PRIORITY_CLASSES,
    ignore: o.ignore ?? [],
    scanIntervalMs: o.scanIntervalMs ?? 30_000,
    watch: o.watch ?? true,
    window: o.window ?? 8,
    maxFrameBytes: o.maxFrameBytes ?? 17 * 1024 * 1024,
    frameDataBytes: o.frameDataBytes ?? 1024 * 1024,
    maxBatchBytes: o.maxBatchBytes ?? 64 * 1024 * 1024,
    streamFromBytes: o.streamFromBytes ?? 8 * 1024 * 1024,
    compression: o.compression ?? 'auto',
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    maxHandshakeFrameBytes: o.maxHandshakeFrameBytes ?? DEFAULT_MAX_HANDSHAKE_FRAME_BYTES,
    maxConnections: o.maxConnections ?? 64,
    maxPendingConnections: o.maxPendingConnections ?? 16,
    tls: o.tls,
  };
}

/**
 * Relaxed-mode interval under load: utilisation-driven eagerness shortens the interval linearly,
 * to 10% of it at full utilisation (out-of-range utilisation is clamped to 0..1).
 */
export function relaxedIntervalMs(intervalMs: number, utilisation: number): number {
  const u = Number.isFinite(utilisation) ? Math.min(1, Math.max(0, utilisation)) : 0;
  return intervalMs * (1 - 0.9 * u);
}
