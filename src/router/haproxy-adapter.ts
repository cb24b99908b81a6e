import { connect } from 'node:net';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { SLOW_START_MIN_FRACTION } from './router-options.js';

/** Where HAProxy's Runtime API listens (`stats socket` in its global section). */
export type HaproxySocket = { readonly path: string } | { readonly host: string; readonly port: number };

/** Options of {@link HaproxyAdapter.create}. */
export interface HaproxyAdapterOptions {
  /** The Runtime API socket: a unix socket path or a TCP address. It needs `level admin`. */
  socket: HaproxySocket;
  /** Per-command timeout, ms. @default 2000 */
  timeoutMs?: number;
}

/** Administrative state set by {@link HaproxyAdapter.setServerState}. */
export type HaproxyServerState = 'ready' | 'drain' | 'maint';

/** One server as reported by `show servers state`. */
export interface HaproxyServer {
  backend: string;
  name: string;
  addr: string;
  port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping. */
  operState: number;
  /** Admin state flags: 0x01/0x02/0x20 maintenance (forced, inherited, resolution); 0x04 marks a server disabled in the config (informational); 0x08/0x10 drain. */
  adminState: number;
  /** Derived from `adminState`. */
  admin: HaproxyServerState;
  weight: number;
}

// Replies of the Runtime API that mean a command was refused (it answers in plain text, always exit 0).
// Checked against HAProxy 2.6's replies: "No such server.", "Invalid addr 'x'", "Absolute weight can only be…",
// "'set server <srv> state' expects…", "Unknown command…", "Permission denied".
const ERROR_REPLY =
  /^(No such|Require|Unknown command|Invalid|Permission denied|Can't|Cannot|'[a-z ]+<|Absolute weight|Relative weight|Missing|Unsupported|Unexpected|Failed)/;

/**
 * Drives a running HAProxy through its Runtime API — server address, state and weight — so a
 * promotion moves traffic with no reload. One command per connection (the API's non-interactive
 * mode); commands are sent one at a time in call order.
 */
export class HaproxyAdapter {
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    private readonly socket: HaproxySocket,
    private readonly timeoutMs: number,
  ) {}

  /** Connects and checks the API answers. Thrown (`UNDERSTUDY_ERR_ROUTER_HAPROXY`) when it does not. */
  static async create(options: HaproxyAdapterOptions): Promise<HaproxyAdapter> {
    const a = new HaproxyAdapter(options.socket, options.timeoutMs ?? 2000);
    const info = await a.command('show info');
    if (!/^Name: HAProxy/m.test(info))
      throw new UnderstudyError(
        ErrorCode.RouterHaproxy,
        `the Runtime API at ${a.#where()} did not answer 'show info' like HAProxy`,
        { details: { reply: info.slice(0, 200) } },
      );
    return a;
  }

  #where(): string {
    return 'path' in this.socket ? this.socket.path : `${this.socket.host}:${this.socket.port}`;
  }

  /**
   * Sends one raw Runtime API command and returns its reply. Thrown (`UNDERSTUDY_ERR_ROUTER_HAPROXY`)
   * when the socket is unreachable, times out, or the reply is an error message.
   */
  command(cmd: string): Promise<string> {
    if (this.#closed)
      return Promise.reject(new UnderstudyError(ErrorCode.RouterHaproxy, 'the HAProxy adapter is closed'));
    if (/[\r\n;]/.test(cmd))
      return Promise.reject(
        new UnderstudyError(
          ErrorCode.RouterHaproxy,
          `refusing a Runtime API command with a newline or ';': ${JSON.stringify(cmd)}`,
        ),
      );
    const run = this.#queue.then(
      () => this.#send(cmd),
      () => this.#send(cmd),
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #send(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s =
        'path' in this.socket ? connect(this.socket.path) : connect(this.socket.port, this.socket.host);
      let out = '';
      const fail = (why: string, cause?: unknown): void => {
        s.destroy();
        reject(
          new UnderstudyError(
            ErrorCode.RouterHaproxy,
            `HAProxy Runtime API at ${this.#where()}: ${why} (command: ${cmd})`,
            { cause, details: { command: cmd } },
          ),
        );
      };
      const timer = setTimeout(() => fail(`no reply within ${this.timeoutMs} ms`), this.timeoutMs);
      s.setEncoding('utf8');
      s.on('connect', () => s.write(`${cmd}\n`));
      s.on('data', (c: string) => (out += c));
      s.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        fail(`unreachable (${err.code ?? err.message})`, err);
      });
      s.on('end', () => {
        clearTimeout(timer);
        const reply = out.trim();
        if (ERROR_REPLY.test(reply.split('\n')[0] ?? '')) fail(`refused: ${reply.split('\n')[0] ?? reply}`);
        else resolve(reply);
      });
    });
  }

  /** Points a server at a new address (a promoted primary). */
  async setServerAddress(backend: string, server: string, host: string, port: number): Promise<void> {
    if (!Number.isInteger(port) || port <= 0 || port > 65535)
      throw new UnderstudyError(ErrorCode.RouterHaproxy, `invalid port ${port} for ${backend}/${server}`);
    await this.command(`set server ${backend}/${server} addr ${host} port ${port}`);
  }

  /** Sets a server's administrative state: `ready` serves, `drain` takes no new connections, `maint` is out. */
  async setServerState(backend: string, server: string, state: HaproxyServerState): Promise<void> {
    await this.command(`set server ${backend}/${server} state ${state}`);
  }

  /** Sets a server's weight (0–256). */
  async setServerWeight(backend: string, server: string, weight: number): Promise<void> {
    if (!Number.isInteger(weight) || weight < 0 || weight > 256)
      throw new UnderstudyError(ErrorCode.RouterHaproxy, `invalid weight ${weight} for ${backend}/${server}`);
    await this.command(`set server ${backend}/${server} weight ${weight}`);
  }

  /**
   * Slow start through the Runtime API (the built-in router's ramp, for HAProxy): sets a joining
   * server's weight to a tenth of `weight`, then raises it in `steps` equal steps over `windowMs`,
   * ending at `weight`. Resolves with the weights set, in order. HAProxy's own `slowstart` only ramps a
   * server coming back from a failed health check; this also ramps one an operator or a scale-out
   * makes ready. `signal` stops the ramp where it is.
   */
  async rampWeight(
    backend: string,
    server: string,
    weight: number,
    windowMs: number,
    options: { steps?: number; signal?: AbortSignal } = {},
  ): Promise<number[]> {
    const steps = options.steps ?? 10;
    if (!Number.isInteger(steps) || steps < 1)
      throw new UnderstudyError(ErrorCode.RouterHaproxy, `invalid ramp steps ${steps} (an integer >= 1)`);
    if (!(Number.isFinite(windowMs) && windowMs >= 0))
      throw new UnderstudyError(ErrorCode.RouterHaproxy, `invalid ramp window ${windowMs} ms`);
    const set: number[] = [];
    for (let k = 0; k <= steps; k++) {
      if (options.signal?.aborted) break;
      const f = Math.max(SLOW_START_MIN_FRACTION, k / steps);
      const w = k === steps ? weight : Math.max(1, Math.round(weight * f));
      if (set.at(-1) !== w) {
        await this.setServerWeight(backend, server, w);
        set.push(w);
      }
      if (k < steps && windowMs > 0) await new Promise((r) => setTimeout(r, windowMs / steps));
    }
    return set;
  }

  /**
   * Moves a backend's traffic to one server: optionally re-points it at `host:port`, sets it ready,
   * then puts every other server of the backend in `others` state (default `maint`; `drain` lets
   * their connections finish).
   */
  async switchTo(
    backend: string,
    target: { server: string; host?: string; port?: number },
    options: { others?: 'maint' | 'drain' } = {},
  ): Promise<void> {
    if (target.host !== undefined && target.port !== undefined)
      await this.setServerAddress(backend, target.server, target.host, target.port);
    await this.setServerState(backend, target.server, 'ready');
    const servers = await this.servers(backend);
    for (const s of servers)
      if (s.name !== target.server && s.admin !== (options.others ?? 'maint'))
        await this.setServerState(backend, s.name, options.others ?? 'maint');
  }

  /** The servers of a backend, from `show servers state`. */
  async servers(backend: string): Promise<HaproxyServer[]> {
    const reply = await this.command(`show servers state ${backend}`);
    const lines = reply.split('\n');
    const header = lines.find((l) => l.startsWith('# '));
    if (header === undefined)
      throw new UnderstudyError(
        ErrorCode.RouterHaproxy,
        `unexpected 'show servers state' reply: ${reply.slice(0, 200)}`,
      );
    const cols = header.slice(2).trim().split(/\s+/);
    const col = (name: string): number => cols.indexOf(name);
    const out: HaproxyServer[] = [];
    for (const l of lines) {
      if (l === '' || l.startsWith('#') || /^\d+$/.test(l.trim())) continue;
      const f = l.trim().split(/\s+/);
      const get = (name: string): string => f[col(name)] ?? '';
      const adminState = Number(get('srv_admin_state'));
      out.push({
        backend: get('be_name'),
        name: get('srv_name'),
        addr: get('srv_addr'),
        port: Number(get('srv_port')),
        operState: Number(get('srv_op_state')),
        adminState,
        admin: adminState & 0x23 ? 'maint' : adminState & 0x18 ? 'drain' : 'ready',
        weight: Number(get('srv_uweight')),
      });
    }
    return out;
  }

  /** Stops accepting commands; waits for the one in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
  }
}
