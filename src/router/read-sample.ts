// A bounded sample of a service's recent live reads, kept by the router so that a new instance can be
// warmed before it serves by replaying them to it at full speed (Router.warmUp), instead of waiting for
// live traffic to bring enough reads.

/** One live read kept for replay: what a warm-up sends again. */
export interface SampledRead {
  readonly method: 'GET' | 'HEAD';
  /** The normalised origin-form target (path and query), as forwarded. */
  readonly path: string;
  /** Flat `[name, value, …]`: only the headers of {@link SAMPLED_HEADERS}, names lower-case. */
  readonly headers: readonly string[];
  /** What it costs the sample: path, names and values, bytes (UTF-16 length). */
  readonly bytes: number;
}

/** Options of a {@link ReadSample}. */
export interface ReadSampleOptions {
  /** Reads kept at most (the oldest go first). @default 1024 */
  maxReads?: number;
  /** Bytes kept at most, path and kept headers of every read. @default 1048576 (1 MiB) */
  maxBytes?: number;
  /** A read larger than this (path and kept headers) is not kept. @default 4096 */
  maxReadBytes?: number;
  /**
   * Once {@link maxReads} are kept, one read in `stride` replaces the oldest: the sample stays recent
   * at a fraction of the cost of keeping every read. @default 16
   */
  stride?: number;
}

interface ResolvedReadSampleOptions {
  maxReads: number;
  maxBytes: number;
  maxReadBytes: number;
  stride: number;
}

/**
 * The request headers a sampled read keeps (lower-case): those that select the code path and the
 * representation. Everything else is dropped — above all credentials (`authorization`, `cookie`,
 * `proxy-authorization`, API keys in custom headers) and the forwarding headers, which name clients.
 */
export const SAMPLED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'accept',
  'accept-encoding',
  'accept-language',
  'cache-control',
  'if-modified-since',
  'if-none-match',
  'user-agent',
]);

function positiveInt(name: string, v: number | undefined, d: number): number {
  const x = v ?? d;
  if (!Number.isInteger(x) || x < 1)
    throw new RangeError(`readSample.${name} must be an integer ≥ 1, got ${x}`);
  return x;
}

/** Only reads are sampled: the methods a warm-up may send again. */
export function isSampledMethod(method: string): method is 'GET' | 'HEAD' {
  return method === 'GET' || method === 'HEAD';
}

/**
 * A ring of recent live reads (GET, HEAD), bounded in count and bytes, each with only the headers of
 * {@link SAMPLED_HEADERS}. Cheap on the hot path: {@link wants} is a counter; headers are filtered only
 * for the reads kept.
 */
export class ReadSample {
  readonly #o: ResolvedReadSampleOptions;
  readonly #ring: SampledRead[] = [];
  /** Index of the oldest read once the ring is full. */
  #head = 0;
  #bytes = 0;
  #seen = 0;
  /** Reads recorded since the sample was created. */
  recorded = 0;
  /** Reads not kept because they were larger than `maxReadBytes`. */
  tooLarge = 0;

  constructor(options: ReadSampleOptions = {}) {
    this.#o = {
      maxReads: positiveInt('maxReads', options.maxReads, 1024),
      maxBytes: positiveInt('maxBytes', options.maxBytes, 1024 * 1024),
      maxReadBytes: positiveInt('maxReadBytes', options.maxReadBytes, 4096),
      stride: positiveInt('stride', options.stride, 16),
    };
  }

  /** Reads kept now. */
  get size(): number {
    return this.#ring.length;
  }

  /** Bytes kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Whether the next read of `method` should be {@link add}ed: reads only; every one until the sample is
   * full, then one in `stride`. Call once per live request.
   */
  wants(method: string): boolean {
    if (!isSampledMethod(method)) return false;
    if (this.#ring.length < this.#o.maxReads) return true;
    return ++this.#seen % this.#o.stride === 0;
  }

  /**
   * Keeps a read: `headers` flat `[name, value, …]` as the client sent them (any case); only
   * {@link SAMPLED_HEADERS} are kept. Writes and reads too large are not kept.
   */
  add(method: string, path: string, headers: readonly string[]): void {
    if (!isSampledMethod(method)) return;
    const kept: string[] = [];
    let bytes = path.length;
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = (headers[i] as string).toLowerCase();
      if (!SAMPLED_HEADERS.has(name)) continue;
      const value = headers[i + 1] as string;
      kept.push(name, value);
      bytes += name.length + value.length;
    }
    if (bytes > this.#o.maxReadBytes) {
      this.tooLarge++;
      return;
    }
    this.recorded++;
    const read: SampledRead = { method, path, headers: kept, bytes };
    if (this.#ring.length < this.#o.maxReads) {
      // Not full (or no longer, after the byte bound dropped some): the newest goes just before the oldest.
      if (this.#head === 0) this.#ring.push(read);
      else this.#ring.splice(this.#head++, 0, read);
    } else {
      this.#bytes -= (this.#ring[this.#head] as SampledRead).bytes;
      this.#ring[this.#head] = read;
      this.#head = (this.#head + 1) % this.#ring.length;
    }
    this.#bytes += bytes;
    // Over the byte bound: the oldest go until it fits.
    while (this.#bytes > this.#o.maxBytes && this.#ring.length > 1) this.#dropOldest();
  }

  #dropOldest(): void {
    const [old] = this.#ring.splice(this.#head, 1);
    this.#bytes -= (old as SampledRead).bytes;
    if (this.#head >= this.#ring.length) this.#head = 0;
  }

  /** The reads kept, oldest first (a copy). */
  reads(): SampledRead[] {
    return [...this.#ring.slice(this.#head), ...this.#ring.slice(0, this.#head)];
  }
}

/** What a {@link ReadSample} holds, as reported in the router's stats. */
export interface ReadSampleStats {
  /** Reads kept now. */
  reads: number;
  /** Their bytes (path and kept headers). */
  bytes: number;
  /** Reads recorded since the router started (kept at the time; older ones have been replaced). */
  recorded: number;
  /** Reads not kept because they were larger than `maxReadBytes`. */
  tooLarge: number;
}

/** The stats of a sample (zeros without one). */
export function readSampleStats(s: ReadSample | undefined): ReadSampleStats {
  return s
    ? { reads: s.size, bytes: s.bytes, recorded: s.recorded, tooLarge: s.tooLarge }
    : { reads: 0, bytes: 0, recorded: 0, tooLarge: 0 };
}

/**
 * The header fields of a request head as the fast path forwards it (`METHOD target HTTP/1.1\r\n`, then
 * `name: value` lines, latin1), flat. For the few reads a {@link ReadSample} keeps.
 */
export function headFields(head: Buffer): string[] {
  const lines = head.toString('latin1').split('\r\n');
  const out: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}
