// How the router reaches a backend: plain TCP to an instance on its own host, TLS to the ingress of the
// agent of any other host (src/agent/tls-ingress.ts), which pipes the connection to the instance over
// its loopback. The target travels in the handshake's SNI, `<port>.<instance-id>.understudy`: no
// round trip beyond TLS's own, and the same keep-alive reuse as plain connections.
import { connect as netConnect, Socket, type OnReadOpts } from 'node:net';
import { networkInterfaces } from 'node:os';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate } from 'node:tls';
import type { buildConnector } from 'undici';

/** TLS from the router to backends on other hosts: the router's client identity and where each host's ingress is. */
export interface UpstreamTls {
  /** The cluster CA certificate (PEM): an ingress must present a certificate it issued. */
  ca: string;
  /** The router's client certificate (PEM), a leaf of the cluster CA (`control-<name>`). */
  cert: string;
  /** Its private key (PEM). Never logged. */
  key: string;
  /**
   * The TLS ingress of the host a backend address belongs to (its agent's TLS port), or undefined when
   * that host has none (its agent runs without one): the backend is then dialled in plain TCP.
   */
  ingressOf(address: string): { host: string; port: number } | undefined;
}

/** How one backend is reached. */
export type UpstreamRoute =
  | { kind: 'plain' }
  | { kind: 'tls'; host: string; port: number; servername: string }
  | { kind: 'refused'; message: string };

/** Counters of the connections the router opened to backends, by how. */
export interface UpstreamStats {
  /** Plain TCP connections (instances on this host, or hosts without an ingress). */
  plain: number;
  /** TLS connections to a host's ingress. */
  tls: number;
  /** TLS handshakes that failed (the ingress's certificate refused, or the ingress closed the connection). */
  tlsErrors: number;
}

/** The SNI name that asks an agent's ingress for `port` of `instanceId` (the agent parses the same form). */
export function ingressServername(instanceId: string, port: number): string | undefined {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(instanceId)) return undefined;
  return `${port}.${instanceId}.understudy`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || host === '::ffff:127.0.0.1';
}

/** The addresses of this machine's interfaces (its own host: instances there are dialled in plain TCP). */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) out.add(a.address.replace(/%.*$/, ''));
  return out;
}

/** What {@link UpstreamDialer.dial} returns: the socket and the event that says it can carry bytes. */
export interface Dialled {
  socket: Socket;
  /** `connect` for plain TCP, `secureConnect` once the TLS handshake is done. */
  ready: 'connect' | 'secureConnect';
}

/**
 * Opens the router's connections to backends: plain TCP to an instance on this host, TLS under the
 * cluster CA to the ingress of any other host when {@link set} gave it a TLS identity. One per router,
 * shared by its HTTP pools, the fast path's raw sockets, the TCP proxy and mirroring.
 */
export class UpstreamDialer {
  #tls: UpstreamTls | undefined;
  #local = new Set<string>();
  readonly #stats: UpstreamStats = { plain: 0, tls: 0, tlsErrors: 0 };

  /**
   * TLS for backends on other hosts from now on (undefined: plain everywhere). Connections already open
   * are kept: set it before the first backend is added.
   */
  set(tls: UpstreamTls | undefined): void {
    this.#tls = tls;
    this.#local = tls ? localAddresses() : new Set();
  }

  /** Whether backends on other hosts are reached through TLS. */
  get tls(): boolean {
    return this.#tls !== undefined;
  }

  stats(): UpstreamStats {
    return { ...this.#stats };
  }

  /** How `target` is reached now. */
  route(target: { id: string; host: string; port: number }): UpstreamRoute {
    const tls = this.#tls;
    if (!tls || isLoopback(target.host) || this.#local.has(target.host)) return { kind: 'plain' };
    const ingress = tls.ingressOf(target.host);
    if (!ingress) return { kind: 'plain' };
    const servername = ingressServername(target.id, target.port);
    if (!servername)
      return {
        kind: 'refused',
        message: `instance id '${target.id}' cannot be named in TLS SNI (one DNS label of at most 63 characters)`,
      };
    return { kind: 'tls', host: ingress.host, port: ingress.port, servername };
  }

  /** Opens a connection to `target` (plain, or TLS through its host's ingress). Errors come as the socket's `error`. */
  dial(
    target: { id: string; host: string; port: number },
    options: { onread?: OnReadOpts; allowHalfOpen?: boolean } = {},
  ): Dialled {
    const route = this.route(target);
    if (route.kind === 'plain') {
      this.#stats.plain++;
      return {
        socket: netConnect({ host: target.host, port: target.port, noDelay: true, ...options }),
        ready: 'connect',
      };
    }
    if (route.kind === 'refused') {
      const socket = new Socket();
      process.nextTick(() => socket.destroy(Object.assign(new Error(route.message), { code: 'EINVAL' })));
      return { socket, ready: 'connect' };
    }
    const tls = this.#tls!;
    this.#stats.tls++;
    const socket = tlsConnect({
      host: route.host,
      port: route.port,
      servername: route.servername,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      minVersion: 'TLSv1.2',
      // The ingress's certificate must name the address dialled (its host's), not the SNI's instance.
      checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(route.host, cert),
      ...options,
    });
    socket.once('error', () => {
      if (!socket.encrypted || socket.authorized !== true) this.#stats.tlsErrors++;
    });
    socket.setNoDelay(true);
    return { socket, ready: 'secureConnect' };
  }

  /**
   * Opens one connection to `target` through its host's ingress and closes it once it could carry bytes,
   * so the ingress's check of the instance (remembered for a moment) is done before traffic needs it
   * — a failover whose target is known before it may switch (the wait for a suspected host's self-fence
   * deadline). Resolves true once connected; false for a target reached in plain TCP (nothing to warm),
   * on an error, or after `timeoutMs`.
   */
  warm(target: { id: string; host: string; port: number }, timeoutMs: number): Promise<boolean> {
    if (this.route(target).kind !== 'tls') return Promise.resolve(false);
    return new Promise((resolve) => {
      const { socket, ready } = this.dial(target);
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, timeoutMs);
      timer.unref();
      socket.once(ready, () => {
        clearTimeout(timer);
        // A graceful close: the ingress has the whole handshake, and checks the instance, first.
        socket.end();
        resolve(true);
      });
      socket.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  /**
   * An undici connector for a pool of `target`: the connection {@link dial} opens, handed over once it
   * can carry bytes, or the error (a connect beyond `timeoutMs` fails with `UND_ERR_CONNECT_TIMEOUT`).
   */
  connector(target: { id: string; host: string; port: number }, timeoutMs: number): buildConnector.connector {
    return (_opts, cb) => {
      const { socket, ready } = this.dial(target);
      let settled = false;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              if (settled) return;
              settled = true;
              socket.destroy();
              cb(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), null);
            }, timeoutMs)
          : undefined;
      socket.once(ready, () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.setKeepAlive(true, 60_000);
        cb(null, socket);
      });
      socket.once('error', (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        cb(err, null);
      });
    };
  }
}
