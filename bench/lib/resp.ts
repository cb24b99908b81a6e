// A minimal Redis (RESP2) client for the recipe's e2e test and the peers benchmark: one connection,
// commands in order, replies parsed. No pipelining API, no reconnects: the caller decides what a failed
// connection means (a write not acknowledged).
import { connect, type Socket } from 'node:net';

/** A RESP reply: simple string, integer, bulk string (null when absent), array, or an error reply. */
export type RespReply = string | number | null | RespReply[] | RespError;

/** An error reply (`-ERR …`, `-READONLY …`). */
export class RespError {
  constructor(readonly message: string) {}
}

/** Encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const s = String(a);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return Buffer.from(parts.join(''));
}

/** Parses one reply at `at`; undefined when the buffer does not hold all of it yet. */
export function parseReply(buf: Buffer, at = 0): { reply: RespReply; next: number } | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const line = buf.toString('utf8', at + 1, eol);
  switch (buf[at]) {
    case 0x2b: // +
      return { reply: line, next: eol + 2 };
    case 0x2d: // -
      return { reply: new RespError(line), next: eol + 2 };
    case 0x3a: // :
      return { reply: Number(line), next: eol + 2 };
    case 0x24: {
      // $
      const n = Number(line);
      if (n < 0) return { reply: null, next: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return undefined;
      return { reply: buf.toString('utf8', eol + 2, eol + 2 + n), next: eol + 2 + n + 2 };
    }
    case 0x2a: {
      // *
      const n = Number(line);
      if (n < 0) return { reply: null, next: eol + 2 };
      const items: RespReply[] = [];
      let next = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, next);
        if (!r) return undefined;
        items.push(r.reply);
        next = r.next;
      }
      return { reply: items, next };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buf.toString('utf8', at, at + 20))}`);
  }
}

/** One connection to a Redis server. */
export class RespClient {
  #buf: Buffer = Buffer.alloc(0);
  readonly #waiting: { resolve: (r: RespReply) => void; reject: (e: Error) => void }[] = [];
  #closed: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, c]) : c;
      for (;;) {
        const r = parseReply(this.#buf);
        if (!r) break;
        this.#buf = this.#buf.subarray(r.next);
        this.#waiting.shift()?.resolve(r.reply);
      }
    });
    const fail = (err: Error): void => {
      this.#closed ??= err;
      for (const w of this.#waiting.splice(0)) w.reject(this.#closed);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  /** Connects; rejects after `timeoutMs`. */
  static connect(host: string, port: number, timeoutMs = 1000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      s.setNoDelay(true);
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new RespClient(s));
      });
      s.once('error', (err) => {
        clearTimeout(t);
        s.destroy();
        reject(err);
      });
    });
  }

  /** Sends a command; resolves with its reply (an error reply too), rejects on a connection failure or after `timeoutMs`. */
  command(args: readonly (string | number)[], timeoutMs = 2000): Promise<RespReply> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        reject(new Error(`${String(args[0])} timed out after ${timeoutMs} ms`));
        this.close();
      }, timeoutMs);
      this.#waiting.push({
        resolve: (r) => {
          clearTimeout(t);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Parses `INFO` output into its fields. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
