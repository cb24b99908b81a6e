// The agent side of TLS between the router and instances on other hosts. Services speak plain HTTP or
// TCP, so TLS ends on the instance's own host: the agent's TLS port (the agent API's, shared) takes a
// connection whose SNI names an instance of this agent, checks the client's certificate, and pipes the
// connection to the instance over the host's loopback. The router names its target in the handshake's
// SNI (`<port>.<instance-id>.understudy`), so choosing the instance costs no round trip beyond TLS's own.
import { connect, isIP, type Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Agent } from './agent.js';

/** The DNS suffix of an ingress SNI name: `<port>.<instance-id>.understudy`. */
export const INGRESS_DOMAIN = 'understudy';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LOOPBACK_ADDRESS = '127.0.0.1';

/**
 * The SNI name that asks an agent's ingress for `port` of `instanceId`: `<port>.<instance-id>.understudy`.
 * Undefined when the id is not one DNS label (instance ids are `<service>-<n>`, lowercase letters,
 * digits and dashes, so every id of a valid spec is one unless it is longer than 63 characters).
 * The router spells the same name (src/router/upstream-tls.ts).
 */
export function ingressServername(instanceId: string, port: number): string | undefined {
  if (!LABEL.test(instanceId) || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return `${port}.${instanceId}.${INGRESS_DOMAIN}`;
}

/** The instance and port an ingress SNI name asks for; undefined when `name` is not one. */
export function parseIngressServername(
  name: string | false | null | undefined,
): { instanceId: string; port: number } | undefined {
  if (typeof name !== 'string') return undefined;
  const m = /^(\d{1,5})\.([^.]+)\.understudy$/.exec(name.toLowerCase());
  if (!m) return undefined;
  const port = Number(m[1]);
  const instanceId = m[2]!;
  if (!LABEL.test(instanceId) || port < 1 || port > 65535) return undefined;
  return { instanceId, port };
}

/** What the ingress needs of its agent: which instances it runs and which ports they listen on. */
export type IngressAgent = Pick<Agent, 'instance' | 'footprint' | 'address'>;

/** Options of {@link TlsIngress}. */
export interface TlsIngressOptions {
  /** The agent whose instances are reachable (and no others). */
  agent: IngressAgent;
  /**
   * Common names a client certificate may carry (besides being issued by the cluster CA): control
   * replicas, whose routers are the ingress's only clients. @default /^control-/
   */
  peerName?: RegExp;
  /** Connections piped at once; one more is refused. @default 4096 */
  maxConnections?: number;
  /** Time to connect to the instance, ms. @default 1000 */
  connectTimeoutMs?: number;
  /**
   * How long a check that an instance listens on a port is reused, ms (the check reads /proc).
   * Forgotten at once when the instance exits. @default 2000
   */
  verifyCacheMs?: number;
  /** Where refusals are told (one line each). @default standard error */
  log?: (line: string) => void;
}

/** Why connections were refused, counted. */
export interface IngressRefusals {
  /** No client certificate, or one not issued by the cluster CA. */
  certificate: number;
  /** A certificate of the CA, but not of a control replica. */
  peer: number;
  /** No SNI, or one that names no instance. */
  name: number;
  /** The instance is not this agent's, has exited, or does not listen on the port named. */
  instance: number;
  /** The instance did not accept the connection. */
  connect: number;
  /** Over `maxConnections`. */
  busy: number;
}

/** Counters of a {@link TlsIngress}. */
export interface IngressStats {
  /** TLS connections handed to the ingress (SNI of the ingress form, or meant for it). */
  accepted: number;
  /** Connections piped to an instance. */
  forwarded: number;
  /** Piped now. */
  active: number;
  refused: IngressRefusals;
  /** Bytes from routers to instances, and back. */
  bytesIn: number;
  bytesOut: number;
}

/**
 * The agent's TLS ingress: connections of control replicas' routers (client certificates of the
 * cluster CA, common name `control-<name>`) to this host's instances, piped over loopback. Attached to
 * a TLS server ({@link attach}: the agent API's), it takes every connection whose SNI is an ingress name
 * and leaves the others to the server's own listeners. A connection is refused — closed, with one log
 * line saying who, what and why — when its certificate is missing, of another CA or not a control
 * replica's, when its SNI names no instance of this agent, or when that instance does not listen on
 * the port named.
 */
export class TlsIngress {
  readonly #agent: IngressAgent;
  readonly #o: Required<Omit<TlsIngressOptions, 'agent'>>;
  readonly #verified = new Map<string, number>();
  /**
   * Checks under way, by instance, pid and port: connections that arrive together share one (after a
   * failover the router opens a dozen at once to the new primary; each reading /proc on its own took
   * ~400 ms on a loaded machine, where one takes a few ms — docs/hosts.md, the host-loss breakdown).
   */
  readonly #checking = new Map<string, Promise<string | undefined>>();
  readonly #sockets = new Set<TLSSocket>();
  readonly #upstreams = new Set<Socket>();
  readonly #stats: IngressStats = {
    accepted: 0,
    forwarded: 0,
    active: 0,
    refused: { certificate: 0, peer: 0, name: 0, instance: 0, connect: 0, busy: 0 },
    bytesIn: 0,
    bytesOut: 0,
  };
  #closed = false;

  constructor(options: TlsIngressOptions) {
    this.#agent = options.agent;
    this.#o = {
      peerName: options.peerName ?? /^control-/,
      maxConnections: options.maxConnections ?? 4096,
      connectTimeoutMs: options.connectTimeoutMs ?? 1000,
      verifyCacheMs: options.verifyCacheMs ?? 2000,
      log: options.log ?? ((line) => process.stderr.write(`${line}\n`)),
    };
  }

  /**
   * Takes the ingress connections of a TLS server: its `secureConnection` listeners (the HTTP server's)
   * keep every connection whose SNI is not an ingress name. The server must ask for client certificates
   * (`requestCert: true`) and trust the cluster CA.
   */
  attach(server: TlsServer): void {
    const others = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      if (parseIngressServername(socket.servername) !== undefined) this.handle(socket);
      else for (const l of others) l.call(server, socket);
    });
  }

  /** Counters (a copy). */
  stats(): IngressStats {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  /** Checks one accepted TLS connection and pipes it to the instance its SNI names, or refuses it. */
  handle(socket: TLSSocket): void {
    this.#stats.accepted++;
    socket.pause();
    socket.on('error', () => socket.destroy());
    const who = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const sni = typeof socket.servername === 'string' ? socket.servername : '(none)';
    const refuse = (kind: keyof IngressRefusals, why: string): void => {
      this.#stats.refused[kind]++;
      this.#o.log(`understudy agent: ingress refused ${who} → ${sni}: ${why}`);
      socket.destroy();
    };
    if (this.#closed) return refuse('busy', 'the ingress is closing');
    if (this.#sockets.size >= this.#o.maxConnections)
      return refuse('busy', `${this.#o.maxConnections} connections are piped already (maxConnections)`);
    if (!socket.authorized) {
      const presented = Object.keys(socket.getPeerCertificate()).length > 0;
      const error = socket.authorizationError as (Error & { code?: string }) | null;
      return refuse(
        'certificate',
        `a client certificate of the cluster CA is required (${presented ? (error?.code ?? String(error)) : 'none presented'})`,
      );
    }
    const cn = String(socket.getPeerCertificate().subject?.CN ?? '');
    if (!this.#o.peerName.test(cn))
      return refuse(
        'peer',
        `the certificate '${cn}' is not a control replica's (${String(this.#o.peerName)})`,
      );
    const target = parseIngressServername(socket.servername);
    if (!target)
      return refuse('name', `the SNI names no instance (expected <port>.<instance-id>.${INGRESS_DOMAIN})`);
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    this.#verify(target.instanceId, target.port).then(
      (problem) => {
        if (socket.destroyed) return;
        if (problem !== undefined) return refuse('instance', problem);
        this.#forward(socket, target.port, refuse);
      },
      (err: unknown) => refuse('instance', `the instance could not be checked: ${(err as Error).message}`),
    );
  }

  /** Undefined when `instanceId` runs on this agent and listens on `port`; otherwise why not. */
  async #verify(instanceId: string, port: number): Promise<string | undefined> {
    const handle = await this.#agent.instance(instanceId);
    if (!handle) return `instance ${instanceId} does not run on this agent`;
    if (handle.exit) return `instance ${instanceId} has exited`;
    const key = `${instanceId}\u0000${handle.pid}\u0000${port}`;
    const until = this.#verified.get(key);
    if (until !== undefined && until > performance.now()) return undefined;
    const shared = this.#checking.get(key);
    if (shared) return shared;
    const check = this.#listens(instanceId, port, key).finally(() => this.#checking.delete(key));
    this.#checking.set(key, check);
    return check;
  }

  /** Reads from /proc whether the instance listens on `port`; remembers a yes for `verifyCacheMs`. */
  async #listens(instanceId: string, port: number, key: string): Promise<string | undefined> {
    const footprint = await this.#agent.footprint(instanceId);
    if (!footprint?.listening.includes(port))
      return `instance ${instanceId} does not listen on port ${port} (it listens on ${footprint?.listening.join(', ') || 'none'})`;
    if (this.#verified.size > 4096) this.#verified.clear();
    this.#verified.set(key, performance.now() + this.#o.verifyCacheMs);
    return undefined;
  }

  #forward(
    socket: TLSSocket,
    port: number,
    refuse: (kind: keyof IngressRefusals, why: string) => void,
  ): void {
    // Loopback first; an instance bound to the host's address only is reached there (same host).
    const addresses = [LOOPBACK_ADDRESS];
    const own = this.#agent.address;
    if (own !== LOOPBACK_ADDRESS && isIP(own) !== 0 && !['0.0.0.0', '::'].includes(own)) addresses.push(own);
    const attempt = (i: number): void => {
      const host = addresses[i]!;
      const up = connect({ host, port, noDelay: true });
      const timer = setTimeout(
        () => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
        this.#o.connectTimeoutMs,
      );
      up.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (socket.destroyed) return;
        if (i + 1 < addresses.length) return attempt(i + 1);
        refuse('connect', `the instance did not accept on port ${port} (${err.code ?? err.message})`);
      });
      up.once('connect', () => {
        clearTimeout(timer);
        if (socket.destroyed) return void up.destroy();
        this.#pipe(socket, up);
      });
    };
    attempt(0);
  }

  #pipe(socket: TLSSocket, up: Socket): void {
    this.#stats.forwarded++;
    this.#stats.active++;
    this.#upstreams.add(up);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#stats.active--;
      this.#stats.bytesIn += up.bytesWritten;
      this.#stats.bytesOut += up.bytesRead;
      this.#upstreams.delete(up);
      socket.destroy();
      up.destroy();
    };
    up.on('error', finish);
    up.on('close', finish);
    socket.on('close', finish);
    socket.pipe(up);
    up.pipe(socket);
    socket.resume();
  }

  /** Refuses new connections and cuts the piped ones. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#sockets, ...this.#upstreams]) s.destroy();
    this.#sockets.clear();
    this.#upstreams.clear();
  }
}
