import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** Options of {@link DnsServer.create}. */
export interface DnsServerOptions {
  /** Address to listen on (UDP and TCP). @default '127.0.0.1' */
  host?: string;
  /** Port for both UDP and TCP; 0 picks one free for both. @default 0 */
  port?: number;
  /** The zone answered authoritatively. @default 'understudy' */
  zone?: string;
  /** TTL of every answer, s. @default 1 */
  ttlSeconds?: number;
  /** Also answer over TCP (large answers, resolvers that retry over TCP). @default true */
  tcp?: boolean;
}

/** Query counters. */
export interface DnsStats {
  queries: number;
  answered: number;
  nxdomain: number;
  refused: number;
  formerr: number;
}

const AA = 1 << 10;
const RD = 1 << 8;
const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

function bad(why: string, field: string): UnderstudyError {
  return new UnderstudyError(ErrorCode.RouterConfig, `DNS server option ${field} ${why}`, {
    details: { field },
  });
}

/**
 * A small authoritative DNS server for `<service>.<zone>.` (default zone `understudy`): A (and AAAA)
 * records of each service's current primaries, TTL 1 s, over UDP and TCP. NXDOMAIN for unknown names
 * in the zone, REFUSED for any other zone (it is not a resolver), NOTIMP for non-QUERY opcodes.
 */
export class DnsServer {
  readonly #records = new Map<string, string[]>();
  readonly #zone: string;
  readonly #ttl: number;
  readonly #udp: UdpSocket;
  #tcp: Server | undefined;
  readonly #tcpSockets = new Set<Socket>();
  #address: { host: string; port: number } = { host: '', port: 0 };
  #closing: Promise<void> | undefined;
  readonly #stats: DnsStats = { queries: 0, answered: 0, nxdomain: 0, refused: 0, formerr: 0 };

  private constructor(zone: string, ttl: number, udp: UdpSocket) {
    this.#zone = zone;
    this.#ttl = ttl;
    this.#udp = udp;
  }

  /** Starts listening. Thrown: `UNDERSTUDY_ERR_ROUTER_CONFIG` for bad options, `UNDERSTUDY_ERR_PORT` when the port is taken. */
  static async create(options: DnsServerOptions = {}): Promise<DnsServer> {
    const host = options.host ?? '127.0.0.1';
    const zone = (options.zone ?? 'understudy').toLowerCase().replace(/^\.+|\.+$/g, '');
    if (zone === '' || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(zone))
      throw bad(`must be a DNS name, got ${String(options.zone)}`, 'zone');
    const ttl = options.ttlSeconds ?? 1;
    if (!Number.isInteger(ttl) || ttl < 0) throw bad('must be an integer >= 0', 'ttlSeconds');
    const wanted = options.port ?? 0;
    if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) throw bad('must be 0..65535', 'port');
    const withTcp = options.tcp ?? true;
    // With port 0 the UDP port is picked first; TCP then takes the same number (retried if it is taken).
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
      const server = new DnsServer(zone, ttl, udp);
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(wanted, host, () => {
            udp.off('error', reject);
            resolve();
          });
        });
        const port = udp.address().port;
        server.#address = { host, port };
        udp.on('message', (msg, rinfo) => {
          const reply = server.#answer(msg);
          if (reply) udp.send(reply, rinfo.port, rinfo.address);
        });
        udp.on('error', () => undefined);
        if (withTcp) await server.#listenTcp(host, port);
        return server;
      } catch (err) {
        await server.close();
        const code = (err as NodeJS.ErrnoException).code;
        if (wanted === 0 && code === 'EADDRINUSE' && attempt < 5) continue;
        throw new UnderstudyError(
          ErrorCode.Port,
          `DNS server cannot listen on ${host}:${wanted}: ${code ?? (err as Error).message}`,
          { cause: err, details: { host, port: wanted } },
        );
      }
    }
  }

  async #listenTcp(host: string, port: number): Promise<void> {
    const tcp = createServer((s) => {
      this.#tcpSockets.add(s);
      s.on('close', () => this.#tcpSockets.delete(s));
      s.on('error', () => undefined);
      s.setTimeout(10_000, () => s.destroy());
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) break;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          const reply = this.#answer(msg);
          if (reply) {
            const framed = Buffer.alloc(2 + reply.length);
            framed.writeUInt16BE(reply.length, 0);
            reply.copy(framed, 2);
            s.write(framed);
          }
        }
      });
    });
    this.#tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  }

  /** The bound address (UDP and TCP share the port). */
  get address(): { host: string; port: number } {
    return { ...this.#address };
  }

  /** `host:port` for `dns.Resolver#setServers`. */
  get server(): string {
    return isIPv6(this.#address.host)
      ? `[${this.#address.host}]:${this.#address.port}`
      : `${this.#address.host}:${this.#address.port}`;
  }

  get zone(): string {
    return this.#zone;
  }

  /**
   * Sets the addresses `<service>.<zone>.` resolves to (the current primaries). An empty list removes
   * the name. Thrown (`UNDERSTUDY_ERR_ROUTER_CONFIG`) for a bad label or address.
   */
  setRecord(service: string, addresses: string | readonly string[]): void {
    const name = service.toLowerCase();
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name))
      throw bad(`needs a DNS label, got ${JSON.stringify(service)}`, 'service');
    const list = typeof addresses === 'string' ? [addresses] : [...addresses];
    for (const a of list)
      if (!isIPv4(a) && !isIPv6(a)) throw bad(`needs IP addresses, got ${JSON.stringify(a)}`, 'addresses');
    if (list.length === 0) this.#records.delete(name);
    else this.#records.set(name, list);
  }

  /** Removes a service's name (queries then get NXDOMAIN). */
  deleteRecord(service: string): void {
    this.#records.delete(service.toLowerCase());
  }

  stats(): DnsStats {
    return { ...this.#stats };
  }

  #answer(msg: Buffer): Buffer | undefined {
    this.#stats.queries++;
    let q: Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      if (msg.length < 2) return undefined;
      this.#stats.formerr++;
      // Answer FORMERR with the query's id so the client stops waiting.
      const reply = Buffer.alloc(12);
      msg.copy(reply, 0, 0, 2);
      reply.writeUInt16BE(0x8000 | RCODE.FORMERR, 2);
      return reply;
    }
    if (q.type === 'response') return undefined;
    const rd = (q.flags ?? 0) & RD;
    const questions = q.questions ?? [];
    const reply = (rcode: number, answers: Answer[] = [], authoritative = true): Buffer =>
      dnsPacket.encode({
        type: 'response',
        id: q.id ?? 0,
        flags: (authoritative ? AA : 0) | rd | rcode,
        questions,
        answers,
      });
    const opcode = ((q.flags ?? 0) >> 11) & 0xf;
    if (opcode !== 0) return reply(RCODE.NOTIMP, [], false);
    const first = questions[0];
    if (first === undefined || questions.length !== 1) {
      this.#stats.formerr++;
      return reply(RCODE.FORMERR, [], false);
    }
    const name = first.name.toLowerCase().replace(/\.$/, '');
    const suffix = `.${this.#zone}`;
    if (name !== this.#zone && !name.endsWith(suffix)) {
      this.#stats.refused++;
      return reply(RCODE.REFUSED, [], false);
    }
    if (name === this.#zone) {
      this.#stats.answered++;
      return reply(RCODE.NOERROR);
    }
    const addrs = this.#records.get(name.slice(0, -suffix.length));
    if (addrs === undefined) {
      this.#stats.nxdomain++;
      return reply(RCODE.NXDOMAIN);
    }
    this.#stats.answered++;
    return reply(RCODE.NOERROR, this.#records4or6(first, addrs));
  }

  #records4or6(q: Question, addrs: readonly string[]): Answer[] {
    const out: Answer[] = [];
    const any = (q.type as string) === 'ANY';
    for (const a of addrs) {
      if ((q.type === 'A' || any) && isIPv4(a))
        out.push({ type: 'A', name: q.name, ttl: this.#ttl, class: 'IN', data: a });
      if ((q.type === 'AAAA' || any) && isIPv6(a))
        out.push({ type: 'AAAA', name: q.name, ttl: this.#ttl, class: 'IN', data: a });
    }
    return out;
  }

  /** Stops answering. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await new Promise<void>((r) => {
        try {
          this.#udp.close(() => r());
        } catch {
          r();
        }
      });
      const tcp = this.#tcp;
      if (tcp) {
        for (const s of this.#tcpSockets) s.destroy();
        await new Promise<void>((r) => tcp.close(() => r()));
      }
    })();
    return this.#closing;
  }
}
