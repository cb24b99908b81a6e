import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ErrorCode, httpStatusOf, isUnderstudyError, UnderstudyError } from '../errors/index.js';
import type { HookRequest, InstanceHandle, InstanceLaunch } from '../runtime/index.js';
import type { Agent } from './agent.js';
import {
  AgentCallSchemas,
  type AgentEvent,
  type AgentInfo,
  type AgentMethod,
  type AgentStreamLine,
} from './agent-wire.js';
import { AgentEventLog } from './agent-event-log.js';
import { AgentServerSyncs, type AgentHandler } from './agent-server-sync.js';
import type { TlsIdentity } from './cluster-ca.js';
import type { TlsIngress } from './tls-ingress.js';

/** Options of {@link AgentServer.start}. */
export interface AgentServerOptions {
  /** The agent served (a `LocalAgent`). */
  agent: Agent;
  /** The cluster secret every request must carry as `Authorization: Bearer <secret>`. */
  secret: string;
  /** `host:port` to listen on; port 0 picks a free port. @default '127.0.0.1:0' */
  listen?: string;
  /**
   * Serve HTTPS with this identity (a leaf of the cluster CA naming this host and its addresses):
   * every client must present a certificate issued by the same CA, besides the bearer secret, and a
   * plain-HTTP request gets a 426 naming the problem. @default none: plain HTTP
   */
  tls?: TlsIdentity;
  /**
   * With `tls`: the TLS ingress that takes the connections whose SNI names an instance of this agent
   * (`<port>.<instance-id>.understudy`, the router's connections from other hosts), on the same port.
   * @default none: every connection is the API's
   */
  ingress?: TlsIngress;
  /** How long a client may take to send a whole request (headers and body), ms. @default 10000 */
  requestTimeoutMs?: number;
  /** Largest request body, bytes. @default 1 MiB */
  bodyLimit?: number;
  /** Events kept for clients that reconnect to the event stream. @default 4096 */
  eventBuffer?: number;
  /** Interval of keep-alive lines on the event stream, ms. @default 2000 */
  pingMs?: number;
  /**
   * How long the watches and file syncs of a client live on once none of its event streams is
   * connected (the control process that asked for them is gone), ms. @default 30000
   */
  orphanGraceMs?: number;
  /** Called after a client closed the agent (`close` without `leaveRunning`: every instance stopped). */
  onClosed?: () => void;
}

/** What one client (one `RemoteAgent`) set up on this agent: its watches and file syncs. */
interface ClientState {
  streams: number;
  watches: Set<string>;
  syncs: Set<string>;
  orphanTimer: NodeJS.Timeout | undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Thrown when `value` does not match `schema`: UNDERSTUDY_ERR_API_REQUEST naming each field. */
function parseBody<T extends z.ZodType>(schema: T, value: unknown, method: string): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => ({
    field: ['body', ...i.path.map(String)].join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown key(s): ${i.keys.join(', ')}` : i.message,
  }));
  throw new UnderstudyError(
    ErrorCode.ApiRequest,
    `${method}: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
    { details: { problems } },
  );
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  let status = 500;
  let body: { error: { code: string; message: string; problems?: unknown } };
  if (isUnderstudyError(err)) {
    status = httpStatusOf(err.code);
    const problems = err.details.problems;
    body = { error: { code: err.code, message: err.message, ...(problems ? { problems } : {}) } };
  } else {
    const e = (err ?? {}) as { statusCode?: unknown; message?: unknown };
    const message = typeof e.message === 'string' && e.message ? e.message : 'internal error';
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      status = e.statusCode;
      body = { error: { code: ErrorCode.ApiRequest, message: `request: ${message}` } };
    } else body = { error: { code: ErrorCode.Internal, message } };
  }
  if (status === 401) void reply.header('www-authenticate', 'Bearer');
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/**
 * Serves an {@link Agent} over HTTP (the agent API of distributed mode, shared/DESIGN.md "Modes"):
 * `POST /v1/<method>` for each operation, with a JSON body validated by zod (400 naming the field),
 * and `GET /v1/events?after=<seq>&client=<id>`, a long-lived NDJSON stream of instance exits, watch
 * verdicts and file-sync events. Every route needs `Authorization: Bearer <cluster secret>` (compared
 * in constant time; 401 otherwise, before the body is read). The secret is never logged.
 *
 * Events carry a sequence number and the agent's boot id: a client that reconnects with `after`
 * receives what it missed (from a bounded buffer; the `hello` line says when some were dropped).
 * Watches and file syncs belong to the client that asked for them and are ended when none of its
 * streams has been connected for `orphanGraceMs`.
 */
export class AgentServer {
  readonly #clients = new Map<string, ClientState>();
  readonly #watches = new Map<string, AbortController>();
  /** The file syncs clients set up, and the `sync*` methods. */
  readonly #syncs: AgentServerSyncs;
  readonly #streams = new Set<ServerResponse>();
  #closed = false;

  private constructor(
    private readonly app: FastifyInstance,
    private readonly agent: Agent,
    private readonly events: AgentEventLog,
    private readonly options: Required<
      Omit<AgentServerOptions, 'onClosed' | 'agent' | 'secret' | 'tls' | 'ingress'>
    > &
      Pick<AgentServerOptions, 'onClosed'>,
    /** Random per process: tells a client that sequence numbers restarted. */
    readonly boot: string,
    /** The base URL the API listens on, e.g. `http://127.0.0.1:41234` (`https://` with TLS). */
    public url: string,
    private readonly unsubscribe: () => void,
    /** The cluster secret: pair keys of cross-host file sync are derived from it. Never logged. */
    secret: string,
    /** This agent's TLS identity, also used by its cross-host file sync. */
    tls: TlsIdentity | undefined,
  ) {
    this.#syncs = new AgentServerSyncs(
      agent,
      events,
      {
        claim: (client, syncId) => {
          const c = this.#client(client);
          c.syncs.add(syncId);
          this.#armOrphanTimer(client, c);
        },
        release: (client, syncId) => void this.#clients.get(client)?.syncs.delete(syncId),
      },
      secret,
      tls,
    );
  }

  /** Starts listening. Thrown: UNDERSTUDY_ERR_USAGE for a bad `listen`, the listen error otherwise. */
  static async start(options: AgentServerOptions): Promise<AgentServer> {
    const o = {
      listen: options.listen ?? '127.0.0.1:0',
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      bodyLimit: options.bodyLimit ?? 1024 * 1024,
      eventBuffer: options.eventBuffer ?? 4096,
      pingMs: options.pingMs ?? 2000,
      orphanGraceMs: options.orphanGraceMs ?? 30_000,
      ...(options.onClosed ? { onClosed: options.onClosed } : {}),
    };
    const { host, port } = parseListen(o.listen);
    if (options.secret.length < 16)
      throw new UnderstudyError(ErrorCode.Usage, 'the cluster secret must be at least 16 characters');
    const expected = digest(`Bearer ${options.secret}`);
    const httpOptions = {
      requestTimeout: o.requestTimeoutMs,
      headersTimeout: o.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(50, o.requestTimeoutMs / 4)),
    };
    const tls = options.tls;
    const ingress = options.ingress;
    const app = Fastify({
      logger: false,
      bodyLimit: o.bodyLimit,
      serverFactory: (handler) =>
        tls
          ? plainAnswered(
              withIngress(
                createHttpsServer(
                  {
                    ...httpOptions,
                    ca: tls.ca,
                    cert: tls.cert,
                    key: tls.key,
                    minVersion: 'TLSv1.2',
                    // Asked for and verified against the cluster CA by the handshake; a client without
                    // one is answered 401 on its first request (below) instead of a bare reset.
                    requestCert: true,
                    rejectUnauthorized: false,
                  },
                  handler,
                ),
                ingress,
              ),
              o.requestTimeoutMs,
            )
          : createServer(httpOptions, handler),
    });
    // Before routing's handlers and before the body is read: a request without the secret reads nothing.
    app.addHook('onRequest', async (req: FastifyRequest) => {
      if (tls) {
        const socket = req.raw.socket as TLSSocket;
        if (!socket.authorized) {
          const presented = Object.keys(socket.getPeerCertificate()).length > 0;
          const error = socket.authorizationError as (Error & { code?: string }) | null;
          const why = !presented ? 'none presented' : (error?.code ?? String(error));
          throw new UnderstudyError(
            ErrorCode.ApiAuth,
            `the agent API needs a TLS client certificate issued by the cluster CA (${why})`,
          );
        }
      }
      // Hashing both sides first makes the comparison constant-time whatever the lengths.
      if (!timingSafeEqual(digest(req.headers.authorization ?? ''), expected))
        throw new UnderstudyError(
          ErrorCode.ApiAuth,
          'missing or wrong bearer token: the agent API needs the cluster key (--cluster-key)',
        );
    });
    app.setErrorHandler((err, _req, reply) => sendError(reply, err));
    app.setNotFoundHandler((req, reply) =>
      sendError(reply, new UnderstudyError(ErrorCode.NotFound, `no agent route ${req.method} ${req.url}`)),
    );
    const events = new AgentEventLog(o.eventBuffer);
    const unsubscribe = options.agent.onExit((h, exit) => events.push({ type: 'exit', handle: h, exit }));
    const boot = randomBytes(8).toString('hex');
    const server = new AgentServer(app, options.agent, events, o, boot, '', unsubscribe, options.secret, tls);
    server.#routes();
    try {
      await app.listen({ host, port });
    } catch (err) {
      unsubscribe();
      await app.close();
      throw err;
    }
    const addr = app.server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    server.url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${bound}`;
    return server;
  }

  #routes(): void {
    const a = this.agent;
    type Handlers = { [M in AgentMethod]: AgentHandler<M> };
    const handlers: Handlers = {
      info: async (): Promise<AgentInfo> => ({
        host: a.host,
        address: a.address,
        runtimeName: a.runtimeName,
        boot: this.boot,
      }),
      start: (b) => {
        if (b.launch.host !== a.host)
          throw new UnderstudyError(
            ErrorCode.ApiRequest,
            `start: body.launch.host: this agent serves host '${a.host}', not '${b.launch.host}'`,
            { details: { problems: [{ field: 'body.launch.host', message: `must be '${a.host}'` }] } },
          );
        return a.start(b.launch as InstanceLaunch);
      },
      stop: (b) => a.stop(b.instanceId, b.graceMs === undefined ? {} : { graceMs: b.graceMs }),
      kill: async (b) => void (await a.kill(b.instanceId, b.signal as NodeJS.Signals)),
      fence: async (b) => void (await a.fence(b.instanceId)),
      adopt: async (b) => ({ adopted: await a.adopt(b.handle as Omit<InstanceHandle, 'exit'>) }),
      instance: async (b) => ({ handle: (await a.instance(b.instanceId)) ?? null }),
      setResources: async (b) => void (await a.setResources(b.instanceId, stripUndefined(b.limits))),
      limitsSupport: () => a.limitsSupport(),
      stats: async (b) => ({ stats: (await a.stats(b.instanceId)) ?? null }),
      footprint: async (b) => ({ footprint: (await a.footprint(b.instanceId)) ?? null }),
      allocatePort: async () => ({ port: await a.allocatePort() }),
      probe: (b) => a.probe(b.target, b.timeoutMs),
      watch: async (b) => this.#watch(b),
      unwatch: async (b) => {
        this.#watches.get(b.watchId)?.abort();
        this.#watches.delete(b.watchId);
      },
      runHook: async (b) => ({
        status:
          (await a.runHook(
            b.instanceId,
            stripUndefined(b.hook) as Parameters<Agent['runHook']>[1],
            b.timeoutMs,
          )) ?? null,
      }),
      runExternalHook: (b) => a.runExternalHook(stripUndefined(b.request) as HookRequest),
      snapshotState: async (b) => void (await a.snapshotState(b.source, b.targetDir)),
      prepareSyncTarget: async (b) => void (await a.prepareSyncTarget(b.stateDir)),
      removeState: async (b) => void (await a.removeState(b.stateDir)),
      compareState: async (b) => ({ differences: await a.compareState(b.aDir, b.bDir) }),
      hostFacts: () => a.hostFacts(),
      ...this.#syncs.handlers(),
      close: async (b) => {
        await a.close(stripUndefined(b));
        if (!b.leaveRunning) this.options.onClosed?.();
      },
    };
    for (const method of Object.keys(AgentCallSchemas) as AgentMethod[]) {
      this.app.post(`/v1/${method}`, async (req, reply) => {
        const body = parseBody(AgentCallSchemas[method], req.body, method);
        const result = await (handlers[method] as (b: unknown) => Promise<unknown>)(body);
        return reply.type('application/json; charset=utf-8').send(JSON.stringify(result ?? {}));
      });
    }
    this.app.get('/v1/events', (req, reply) => this.#stream(req, reply));
  }

  #client(id: string): ClientState {
    let c = this.#clients.get(id);
    if (!c) {
      c = { streams: 0, watches: new Set(), syncs: new Set(), orphanTimer: undefined };
      this.#clients.set(id, c);
    }
    return c;
  }

  /** A client with no connected stream loses its watches and syncs after the grace period. */
  #armOrphanTimer(id: string, c: ClientState): void {
    if (c.streams > 0 || c.orphanTimer || this.#closed) return;
    c.orphanTimer = setTimeout(() => {
      c.orphanTimer = undefined;
      if (c.streams > 0) return;
      for (const w of [...c.watches]) {
        this.#watches.get(w)?.abort();
        this.#watches.delete(w);
      }
      for (const s of [...c.syncs]) void this.#syncs.drop(s).catch(() => undefined);
      this.#clients.delete(id);
    }, this.options.orphanGraceMs);
    c.orphanTimer.unref();
  }

  #watch(b: z.output<typeof AgentCallSchemas.watch>): Record<string, never> {
    this.#watches.get(b.watchId)?.abort();
    const ac = new AbortController();
    this.#watches.set(b.watchId, ac);
    const c = this.#client(b.client);
    c.watches.add(b.watchId);
    ac.signal.addEventListener('abort', () => c.watches.delete(b.watchId), { once: true });
    this.agent.watch(
      stripUndefined(b.watch) as Parameters<Agent['watch']>[0],
      {
        onHealth: (verdict) => this.events.push({ type: 'health', watchId: b.watchId, verdict }),
        onHang: (verdict) => this.events.push({ type: 'hang', watchId: b.watchId, verdict }),
      },
      ac.signal,
    );
    this.#armOrphanTimer(b.client, c);
    return {};
  }

  #stream(req: FastifyRequest, reply: FastifyReply): void {
    const q = req.query as Record<string, unknown>;
    const after = Number(q.after ?? 0);
    const boot = typeof q.boot === 'string' ? q.boot : '';
    const clientId = typeof q.client === 'string' && /^[\w.-]{1,200}$/.test(q.client) ? q.client : undefined;
    if (!Number.isSafeInteger(after) || after < 0 || !clientId) {
      void sendError(
        reply,
        new UnderstudyError(
          ErrorCode.ApiRequest,
          'events: query.after must be a non-negative integer and query.client an id ([A-Za-z0-9_.-])',
          {
            details: {
              problems: [{ field: after >= 0 ? 'query.client' : 'query.after', message: 'invalid' }],
            },
          },
        ),
      );
      return;
    }
    void reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    // A client of an earlier boot of this agent gets everything buffered since this one started.
    const from = boot === this.boot ? after : 0;
    const { events, gap } = this.events.since(from);
    const write = (line: AgentStreamLine): boolean => res.write(JSON.stringify(line) + '\n');
    write({
      type: 'hello',
      boot: this.boot,
      seq: this.events.seq,
      gap: gap || (boot !== '' && boot !== this.boot),
    });
    for (const e of events) write(e);
    const c = this.#client(clientId);
    c.streams++;
    clearTimeout(c.orphanTimer);
    c.orphanTimer = undefined;
    this.#streams.add(res);
    const off = this.events.subscribe((e: AgentEvent) => write(e));
    const ping = setInterval(() => write({ type: 'ping' }), this.options.pingMs);
    const done = (): void => {
      if (!this.#streams.delete(res)) return;
      off();
      clearInterval(ping);
      c.streams--;
      this.#armOrphanTimer(clientId, c);
    };
    res.on('close', done);
    req.raw.on('close', done);
  }

  /**
   * What clients have set up on this agent now, for status and tests; `handedOver`: syncs handed over
   * to a newer client's sync of their service and still copying.
   */
  state(): { clients: number; streams: number; watches: number; syncs: number; handedOver: number } {
    return {
      clients: this.#clients.size,
      streams: this.#streams.size,
      watches: this.#watches.size,
      syncs: this.#syncs.size,
      handedOver: this.#syncs.handedOver(),
    };
  }

  /** Stops listening, ends every event stream, every watch and file sync (the agent itself stays open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.unsubscribe();
    for (const c of this.#clients.values()) clearTimeout(c.orphanTimer);
    for (const w of this.#watches.values()) w.abort();
    this.#watches.clear();
    await this.#syncs.close();
    for (const res of this.#streams) res.destroy();
    await this.app.close();
  }
}

/** Hands the server's ingress connections (SNI of an instance) to `ingress`, when there is one. */
function withIngress<S extends TlsServer>(server: S, ingress: TlsIngress | undefined): S {
  ingress?.attach(server);
  return server;
}

/** The first byte of a TLS connection: a handshake record. */
const TLS_HANDSHAKE = 0x16;

/**
 * Makes a TLS server tell a plain-HTTP client what is wrong instead of resetting it: each connection's
 * first byte is looked at before the TLS layer takes the socket; anything but a TLS handshake is
 * answered `426` with an `UNDERSTUDY_ERR_TLS_REQUIRED` error body and closed. A connection that sends
 * nothing within `timeoutMs` is closed.
 */
function plainAnswered<S extends NetServer>(server: S, timeoutMs: number): S {
  const tlsListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once('error', () => socket.destroy());
    socket.once('readable', () => {
      clearTimeout(timer);
      const first = socket.read(1) as Buffer | null;
      if (first === null) return void socket.destroy();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) {
        for (const l of tlsListeners) l.call(server, socket);
        return;
      }
      const body = JSON.stringify({
        error: {
          code: ErrorCode.TlsRequired,
          message: 'this agent API speaks HTTPS only (TLS under the cluster CA): use its https:// address',
        },
      });
      socket.resume(); // the request is not read: drained and dropped
      socket.end(
        `HTTP/1.1 426 Upgrade Required\r\nupgrade: TLS/1.3\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  });
  return server;
}

/** Drops keys whose value is undefined (zod keeps optional keys absent, but `exactOptionalPropertyTypes`). */
function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/** Parses `host:port` (`[::1]:port` for IPv6). Thrown: UNDERSTUDY_ERR_USAGE. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65_535)
    throw new UnderstudyError(
      ErrorCode.Usage,
      `invalid listen address '${listen}': expected host:port, e.g. 127.0.0.1:0 or [::1]:7700`,
    );
  return { host: (m[1] ?? m[2])!, port };
}
