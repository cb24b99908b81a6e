import type { Etcd3, IKeyValue, IOptions, IRequestOp, ICompare, Watcher } from 'etcd3';
import { ErrorCode, UnderstudyError, isUnderstudyError } from '../errors/index.js';
import { leaseIdOf, leaseNotFound, toEtcdError } from './etcd-errors.js';
import { guardHolds, notLeaderError } from './guard.js';
import { prefixRangeEnd } from './prefix-range.js';
import type {
  CasOptions,
  DeleteOptions,
  GuardOptions,
  Lease,
  PutOptions,
  StateStore,
  StoreGuard,
  StoreRecord,
  StoreSnapshot,
  Unwatch,
  WatchEvent,
  WatchOptions,
} from './state-store.js';
import { WatchHub } from './watch-hub.js';

/** Options of {@link EtcdStateStore.create}. */
export interface EtcdStateStoreOptions {
  /** etcd client endpoints, `host:port` each (see `parseEtcdUrl` for `etcd://` strings). */
  endpoints: string[];
  /**
   * Namespace of every key this store writes, so several clusters (and tests) share one etcd. Records
   * live under `<prefix>k/`, epochs under `<prefix>e/`.
   * @default 'understudy/'
   */
  prefix?: string;
  /** etcd user and password (etcd's auth must be enabled on the server). @default no auth */
  auth?: { username: string; password: string };
  /**
   * TLS to the endpoints (PEM contents, not paths): `ca` verifies the server; `cert` and `key` are the
   * client certificate for servers that require one. @default plaintext
   */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  /** Deadline of each request (not of watches and keepalive streams). @default 5000 */
  requestTimeoutMs?: number;
  /**
   * How long one lease keep-alive waits for its member's answer before it is tried on another member
   * (see {@link EtcdStateStore.keepAlive}); a member that answers does so in milliseconds. @default 500
   */
  keepAliveAttemptMs?: number;
}

/** The default key prefix of {@link EtcdStateStoreOptions.prefix}. */
export const ETCD_DEFAULT_PREFIX = 'understudy/';

const RECORDS = 'k/';
const EPOCHS = 'e/';

/**
 * The distributed {@link StateStore} on etcd v3 (the `etcd3` client). A thin mapping: records are etcd
 * keys under `<prefix>k/` (revision = mod_revision, createRevision, version, lease as etcd has them),
 * compare-and-set and guarded writes are transactions, leases are etcd leases, watches are etcd watches
 * (`fromRevision + 1` is the start revision), epochs are keys under `<prefix>e/` bumped by transaction.
 *
 * Differences from the embedded store, all within the contract:
 * - The store revision is etcd's cluster-wide revision: writes of other prefixes sharing the etcd move it too.
 * - Leases are whole seconds: a TTL is rounded up to the next second, and the server may raise it to its
 *   minimum (1.5 × election timeout, rounded up). Expiry is the server's business (checked every ~500 ms).
 * - `compact(r)` compacts the whole etcd (not only this prefix), through `r` inclusive.
 * - Losing the connection fails requests with `UNDERSTUDY_ERR_STORE_UNAVAILABLE` naming the endpoints;
 *   watches reconnect by themselves and resume after the last revision they delivered.
 */
export class EtcdStateStore implements StateStore {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #endpoints: string[];
  readonly #watches = new Set<() => void>();
  readonly #keepAliveAttemptMs: number;
  #closed = false;

  private constructor(client: Etcd3, endpoints: string[], prefix: string, keepAliveAttemptMs: number) {
    this.#client = client;
    this.#endpoints = endpoints;
    this.#prefix = prefix;
    this.#keepAliveAttemptMs = keepAliveAttemptMs;
  }

  /**
   * Connects to etcd and checks that it answers. Rejects with `UNDERSTUDY_ERR_STORE_UNAVAILABLE` naming
   * the endpoints when it does not, and with `UNDERSTUDY_ERR_USAGE` for options that cannot work.
   */
  static async create(options: EtcdStateStoreOptions): Promise<EtcdStateStore> {
    if (options.endpoints.length === 0)
      throw new UnderstudyError(ErrorCode.Usage, 'EtcdStateStore needs at least one endpoint', {
        details: {},
      });
    const prefix = options.prefix ?? ETCD_DEFAULT_PREFIX;
    const timeout = options.requestTimeoutMs ?? 5000;
    const scheme = options.tls ? 'https' : 'http';
    const clientOptions: IOptions = {
      hosts: options.endpoints.map((e) => `${scheme}://${e}`),
      dialTimeout: timeout,
      // HTTP/2 pings find a connection to a member that went silent (cut off, not closed): its calls and
      // streams (watches, keep-alives) fail and move to another member instead of waiting forever.
      // Every 6 s, and only while a call or stream is open: etcd refuses a client that pings more often
      // than its --grpc-keepalive-min-time (5 s) or without a stream (it closes the connection).
      grpcOptions: {
        'grpc.keepalive_time_ms': 6000,
        'grpc.keepalive_timeout_ms': 1500,
        'grpc.keepalive_permit_without_calls': 0,
      },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
      ...(options.auth ? { auth: { username: options.auth.username, password: options.auth.password } } : {}),
      ...(options.tls
        ? {
            credentials: {
              rootCertificate: options.tls.ca,
              ...(options.tls.cert ? { certChain: options.tls.cert } : {}),
              ...(options.tls.key ? { privateKey: options.tls.key } : {}),
            },
          }
        : {}),
    };
    // Loaded on first use: the etcd client (gRPC, protobuf) takes most of a second to load, which every
    // command on the embedded store would otherwise pay at start-up.
    const { Etcd3 } = await import('etcd3');
    const client = new Etcd3(clientOptions);
    const store = new EtcdStateStore(client, options.endpoints, prefix, options.keepAliveAttemptMs ?? 500);
    try {
      await store.revision();
    } catch (err) {
      client.close();
      throw err;
    }
    return store;
  }

  /** The endpoints this store talks to (for messages and status). */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** The key prefix this store writes under. */
  get prefix(): string {
    return this.#prefix;
  }

  async get(key: string): Promise<StoreRecord | undefined> {
    return this.#call('get', async () => {
      const res = await this.#client.kv.range({ key: this.#key(key) });
      const kv = res.kvs[0];
      return kv && this.#toRecord(kv);
    });
  }

  async list(prefix: string): Promise<StoreRecord[]> {
    return (await this.snapshot(prefix)).records;
  }

  async snapshot(prefix: string): Promise<StoreSnapshot> {
    return this.#call('list', async () => {
      const res = await this.#client.kv.range({ key: this.#key(prefix), range_end: this.#rangeEnd(prefix) });
      return { records: res.kvs.map((kv) => this.#toRecord(kv)), revision: Number(res.header.revision) };
    });
  }

  async put(key: string, value: string, options?: PutOptions): Promise<StoreRecord> {
    const record = await this.#write(key, value, options, undefined);
    return record as StoreRecord;
  }

  async compareAndSet(key: string, value: string, options: CasOptions): Promise<StoreRecord | undefined> {
    return this.#write(key, value, options, options.expectedRevision);
  }

  async delete(key: string, options?: DeleteOptions): Promise<boolean> {
    return this.#call('delete', async () => {
      const compare: ICompare[] = [];
      if (options?.guard) compare.push(this.#guardCompare(options.guard));
      if (options?.expectedRevision !== undefined)
        compare.push({
          key: this.#key(key),
          target: 'Mod',
          result: 'Equal',
          mod_revision: options.expectedRevision,
        });
      const op: IRequestOp = { request_delete_range: { key: this.#key(key) } };
      if (compare.length === 0) {
        const res = await this.#client.kv.deleteRange({ key: this.#key(key) });
        return Number(res.deleted) > 0;
      }
      const res = await this.#client.kv.txn({
        compare,
        success: [op],
        failure: this.#guardRead(options?.guard),
      });
      if (!res.succeeded) {
        this.#throwIfGuardFailed(options?.guard, res.responses);
        return false;
      }
      return Number(res.responses[0]?.response_delete_range.deleted ?? 0) > 0;
    });
  }

  async watch(
    prefix: string,
    listener: (event: WatchEvent) => void,
    options?: WatchOptions,
  ): Promise<Unwatch> {
    return this.#call('watch', async () => {
      if (options?.signal?.aborted) return () => undefined;
      const from =
        options?.fromRevision === undefined ? undefined : Math.max(0, Math.floor(options.fromRevision));
      if (from !== undefined) await this.#checkNotCompacted(from);
      const hub = new WatchHub();
      const handle: { watcher?: Watcher } = {};
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        this.#watches.delete(end);
        hub.closeAll();
        void handle.watcher?.cancel().catch(() => undefined);
      };
      hub.add({
        prefix: '',
        listener,
        ...(options?.signal ? { signal: options.signal } : {}),
        ...(options?.onError ? { onError: options.onError } : {}),
      });
      let builder = this.#client.watch().inRange({ start: this.#key(prefix), end: this.#rangeEnd(prefix) });
      if (from !== undefined) builder = builder.startRevision(String(from + 1));
      const watcher = await builder.create();
      handle.watcher = watcher;
      watcher.on('data', (res) => {
        if (ended) return;
        hub.publish(res.events.map((e) => this.#toEvent(e.type, e.kv)));
      });
      watcher.on('error', (err: Error) => {
        if (ended) return;
        const error = /cancel|compact/i.test(err.message)
          ? new UnderstudyError(
              ErrorCode.StoreCompacted,
              `watch of '${prefix}' ended: etcd canceled it (${err.message}); its history was probably compacted — read a fresh snapshot() and watch from its revision`,
              { cause: err, details: { prefix } },
            )
          : toEtcdError(err, this.#endpoints, 'watch');
        ended = true;
        this.#watches.delete(end);
        hub.failAll(error);
      });
      this.#watches.add(end);
      options?.signal?.addEventListener('abort', end, { once: true });
      return end;
    });
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    return this.#call('grantLease', async () => {
      if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
        throw new UnderstudyError(
          ErrorCode.StoreLease,
          `a lease TTL must be a positive number of ms, got ${ttlMs}`,
          {
            details: { ttlMs },
          },
        );
      }
      const res = await this.#client.leaseClient.leaseGrant({ TTL: Math.ceil(ttlMs / 1000), ID: 0 });
      if (res.error)
        throw new UnderstudyError(ErrorCode.StoreLease, `etcd refused the lease: ${res.error}`, {
          details: { ttlMs },
        });
      const ttl = Number(res.TTL) * 1000;
      return { id: res.ID, ttlMs: ttl, expiresAt: Date.now() + ttl };
    });
  }

  /**
   * Renews a lease. A keep-alive is a stream to one member: when it fails or does not answer within
   * `keepAliveAttemptMs` (that member killed, or cut off and silent), it is tried again on another
   * member (the client picks one at random among those whose circuit is closed), up to three times per
   * endpoint. An unknown lease is not retried.
   */
  async keepAlive(leaseId: string): Promise<Lease> {
    return this.#call('keepAlive', async () => {
      const id = leaseIdOf(leaseId);
      let last: unknown;
      for (let attempt = 0; attempt < 3 * this.#endpoints.length; attempt++) {
        try {
          const ttl = await this.#keepAliveOnce(id);
          if (!(ttl > 0)) throw leaseNotFound(leaseId);
          return { id: leaseId, ttlMs: ttl * 1000, expiresAt: Date.now() + ttl * 1000 };
        } catch (err) {
          if (isUnderstudyError(err, ErrorCode.StoreLease) || this.#closed) throw err;
          last = err;
        }
      }
      throw last;
    });
  }

  /** One keep-alive on one stream: the TTL etcd answers (0: no such lease). */
  async #keepAliveOnce(id: string): Promise<number> {
    const stream = await this.#client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    try {
      const res = await new Promise<{ ID: string; TTL: string }>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no keep-alive answer within ${this.#keepAliveAttemptMs} ms`)),
          this.#keepAliveAttemptMs,
        );
        stream.on('data', resolve);
        stream.on('error', reject);
        stream.write({ ID: id });
      });
      return Number(res.TTL);
    } finally {
      clearTimeout(timer);
      stream.end();
    }
  }

  async revokeLease(leaseId: string): Promise<void> {
    await this.#call('revokeLease', async () => {
      if (!/^\d+$/.test(leaseId)) return;
      try {
        await this.#client.leaseClient.leaseRevoke({ ID: leaseId });
      } catch (err) {
        if (!/lease not found/i.test((err as Error).message)) throw err;
      }
    });
  }

  async epoch(service: string): Promise<number> {
    return this.#call('epoch', async () => {
      const res = await this.#client.kv.range({ key: this.#epochKey(service) });
      const kv = res.kvs[0];
      return kv ? Number(kv.value.toString()) : 0;
    });
  }

  async bumpEpoch(service: string, expected: number, options?: GuardOptions): Promise<number | undefined> {
    return this.#call('bumpEpoch', async () => {
      const key = this.#epochKey(service);
      const compare: ICompare[] = [];
      if (options?.guard) compare.push(this.#guardCompare(options.guard));
      compare.push(
        expected === 0
          ? { key, target: 'Version', result: 'Equal', version: 0 }
          : { key, target: 'Value', result: 'Equal', value: Buffer.from(String(expected)) },
      );
      const next = expected + 1;
      const res = await this.#client.kv.txn({
        compare,
        success: [{ request_put: { key, value: Buffer.from(String(next)) } }],
        failure: this.#guardRead(options?.guard),
      });
      if (res.succeeded) return next;
      this.#throwIfGuardFailed(options?.guard, res.responses);
      return undefined;
    });
  }

  async revision(): Promise<number> {
    return this.#call('revision', async () => {
      const res = await this.#client.kv.range({ key: this.#key(''), count_only: true, limit: 1 });
      return Number(res.header.revision);
    });
  }

  async compact(revision: number): Promise<void> {
    await this.#call('compact', async () => {
      const current = await this.revision();
      // etcd keeps the history *at* its compaction revision; ours is gone through `revision` inclusive.
      const target = Math.min(Math.floor(revision) + 1, current);
      if (target < 1) return;
      try {
        await this.#client.kv.compact({ revision: target, physical: true });
      } catch (err) {
        if (!/compacted/i.test((err as Error).message)) throw err;
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const end of [...this.#watches]) end();
    this.#client.close();
  }

  // ---- internals ----

  async #call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new UnderstudyError(
        ErrorCode.StoreUnavailable,
        `the etcd store (${this.#endpoints.join(',')}) is closed`,
        { details: { endpoints: this.#endpoints } },
      );
    }
    try {
      return await fn();
    } catch (err) {
      throw toEtcdError(err, this.#endpoints, operation);
    }
  }

  async #write(
    key: string,
    value: string,
    options: PutOptions | undefined,
    expectedRevision: number | undefined,
  ): Promise<StoreRecord | undefined> {
    return this.#call('put', async () => {
      const leaseId = options?.leaseId;
      const put = {
        key: this.#key(key),
        value: Buffer.from(value),
        prev_kv: true,
        ...(leaseId === undefined ? {} : { lease: leaseIdOf(leaseId) }),
      };
      const compare: ICompare[] = [];
      if (options?.guard) compare.push(this.#guardCompare(options.guard));
      if (expectedRevision !== undefined)
        compare.push({ key: this.#key(key), target: 'Mod', result: 'Equal', mod_revision: expectedRevision });
      let revision: number;
      let prev: IKeyValue | undefined;
      try {
        if (compare.length === 0) {
          const res = await this.#client.kv.put(put);
          revision = Number(res.header.revision);
          prev = res.prev_kv ?? undefined;
        } else {
          const res = await this.#client.kv.txn({
            compare,
            success: [{ request_put: put }],
            failure: this.#guardRead(options?.guard),
          });
          if (!res.succeeded) {
            this.#throwIfGuardFailed(options?.guard, res.responses);
            return undefined;
          }
          revision = Number(res.header.revision);
          prev = res.responses[0]?.response_put.prev_kv ?? undefined;
        }
      } catch (err) {
        if (leaseId !== undefined && /lease not found/i.test((err as Error).message))
          throw leaseNotFound(leaseId);
        throw err;
      }
      const record: StoreRecord = {
        key,
        value,
        revision,
        createRevision: prev ? Number(prev.create_revision) : revision,
        version: prev ? Number(prev.version) + 1 : 1,
      };
      if (leaseId !== undefined) record.leaseId = leaseId;
      return record;
    });
  }

  #guardCompare(guard: StoreGuard): ICompare {
    return {
      key: this.#key(guard.key),
      target: 'Create',
      result: 'Equal',
      create_revision: guard.createRevision,
    };
  }

  /** The failure branch of a guarded transaction: read the guard key, to tell a lost guard from a lost condition. */
  #guardRead(guard: StoreGuard | undefined): IRequestOp[] {
    return guard ? [{ request_range: { key: this.#key(guard.key) } }] : [];
  }

  #throwIfGuardFailed(
    guard: StoreGuard | undefined,
    responses: { response_range?: { kvs: IKeyValue[] } }[],
  ): void {
    if (!guard) return;
    const kv = responses[0]?.response_range?.kvs[0];
    const current = kv ? { createRevision: Number(kv.create_revision) } : undefined;
    if (!guardHolds(guard, current)) throw notLeaderError(guard, current?.createRevision);
  }

  /** Rejects with `UNDERSTUDY_ERR_STORE_COMPACTED` when the history after `from` is no longer kept. */
  async #checkNotCompacted(from: number): Promise<void> {
    try {
      await this.#client.kv.range({ key: this.#key(''), count_only: true, limit: 1, revision: from + 1 });
    } catch (err) {
      const message = (err as Error).message;
      if (/compacted/i.test(message)) {
        throw new UnderstudyError(
          ErrorCode.StoreCompacted,
          `cannot replay changes after revision ${from}: etcd has compacted that history; read a fresh snapshot() and watch from its revision`,
          { cause: err, details: { fromRevision: from } },
        );
      }
      if (!/future revision/i.test(message)) throw err;
    }
  }

  #key(key: string): Buffer {
    return Buffer.from(this.#prefix + RECORDS + key);
  }

  #epochKey(service: string): Buffer {
    return Buffer.from(this.#prefix + EPOCHS + service);
  }

  /** End of the etcd range of the record keys under `prefix`. */
  #rangeEnd(prefix: string): Buffer {
    const full = this.#prefix + RECORDS + prefix;
    const end = prefixRangeEnd(full);
    // A full prefix never ends in U+10FFFF only (it starts with our prefix and "k/"), so `end` exists.
    return Buffer.from(end ?? full);
  }

  #toRecord(kv: IKeyValue): StoreRecord {
    const record: StoreRecord = {
      key: kv.key.toString().slice(this.#prefix.length + RECORDS.length),
      value: kv.value.toString(),
      revision: Number(kv.mod_revision),
      createRevision: Number(kv.create_revision),
      version: Number(kv.version),
    };
    if (kv.lease && kv.lease !== '0') record.leaseId = String(kv.lease);
    return record;
  }

  #toEvent(type: string, kv: IKeyValue): WatchEvent {
    const revision = Number(kv.mod_revision);
    if (type === 'Delete') {
      return { type: 'delete', key: kv.key.toString().slice(this.#prefix.length + RECORDS.length), revision };
    }
    const record = this.#toRecord(kv);
    return { type: 'put', key: record.key, record, revision };
  }
}
