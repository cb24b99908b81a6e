// llhttp — node's own HTTP/1.1 parser — as a test oracle: the same bytes the router's fast path parses
// are given to a node:http server (requests) or client (responses) on 127.0.0.1, and what llhttp made
// of them is reported. Used by the differential (property-based) tests of the fast path's framing.
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import {
  connect,
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from 'node:net';

/** One request as llhttp framed it. */
export interface LlhttpRequest {
  method: string;
  url: string;
  version: string;
  rawHeaders: string[];
  body: Buffer;
  /** The whole body arrived (the message ended before the connection did). */
  complete: boolean;
}

/** What llhttp made of the bytes a client sent on one connection. */
export interface LlhttpRequests {
  requests: LlhttpRequest[];
  /** The parse error code (`HPE_...`), if llhttp refused the bytes. */
  error: string | undefined;
}

/** One response as llhttp framed it, or its parse error. */
export interface LlhttpResponse {
  status: number;
  rawHeaders: string[];
  body: Buffer;
  complete: boolean;
  /** Bytes followed the complete message and llhttp refused them (as it must a stray byte). */
  trailing: boolean;
  error: string | undefined;
}

const GUARD_MS = 3000;

/** A node:http server that reports how llhttp parses the bytes written on a connection. */
export class RequestOracle {
  readonly #server: Server;
  #current: LlhttpRequests | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(server: Server) {
    this.#server = server;
    server.on('request', (req, res) => {
      const r: LlhttpRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        version: req.httpVersion,
        rawHeaders: req.rawHeaders,
        body: Buffer.alloc(0),
        complete: false,
      };
      this.#current?.requests.push(r);
      req.on('data', (d: Buffer) => (r.body = Buffer.concat([r.body, d])));
      req.on('end', () => {
        r.complete = true;
        res.end();
      });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (this.#current && this.#current.error === undefined) this.#current.error = err.code ?? 'ERROR';
      socket.destroy();
    });
  }

  /** Starts the oracle's server on 127.0.0.1 (llhttp's defaults; Host is not required, so llhttp alone decides). */
  static async start(): Promise<RequestOracle> {
    const server = createServer({ requireHostHeader: false, keepAliveTimeout: GUARD_MS });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return new RequestOracle(server);
  }

  /** Writes `bytes` on a fresh connection, half-closes it, and reports what llhttp parsed. One at a time. */
  parse(bytes: Buffer): Promise<LlhttpRequests> {
    const run = this.#queue.then(() => this.#parse(bytes));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #parse(bytes: Buffer): Promise<LlhttpRequests> {
    const result: LlhttpRequests = { requests: [], error: undefined };
    this.#current = result;
    const port = (this.#server.address() as AddressInfo).port;
    return new Promise((resolve) => {
      let serverSide = false;
      const done = (): void => {
        clearTimeout(guard);
        this.#server.off('connection', onConnection);
        this.#current = undefined;
        resolve(result);
      };
      const onConnection = (s: Socket): void => {
        serverSide = true;
        s.once('close', done);
      };
      this.#server.on('connection', onConnection);
      const c = connect(port, '127.0.0.1', () => c.end(bytes));
      c.on('error', () => undefined);
      c.on('data', () => undefined);
      c.on('close', () => {
        if (!serverSide) done();
      });
      const guard = setTimeout(() => {
        result.error ??= 'ORACLE_TIMEOUT';
        c.destroy();
        done();
      }, GUARD_MS);
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

/** A raw TCP server answering one request with given bytes, read back by a node:http client (llhttp). */
export class ResponseOracle {
  readonly #server: TcpServer;
  #payload: Buffer = Buffer.alloc(0);
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(server: TcpServer) {
    this.#server = server;
    server.on('connection', (s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end(this.#payload));
    });
  }

  static async start(): Promise<ResponseOracle> {
    const server = createTcpServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return new ResponseOracle(server);
  }

  /** Reports how llhttp parses `bytes` as the response to a GET (`HEAD` when `head`). One at a time. */
  parse(bytes: Buffer, head = false): Promise<LlhttpResponse> {
    const run = this.#queue.then(() => this.#parse(bytes, head));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #parse(bytes: Buffer, head: boolean): Promise<LlhttpResponse> {
    this.#payload = bytes;
    const port = (this.#server.address() as AddressInfo).port;
    const out: LlhttpResponse = {
      status: 0,
      rawHeaders: [],
      body: Buffer.alloc(0),
      complete: false,
      trailing: false,
      error: undefined,
    };
    return new Promise((resolve) => {
      let response: IncomingMessage | undefined;
      let settled = false;
      const done = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        resolve(out);
      };
      const req = request({ host: '127.0.0.1', port, method: head ? 'HEAD' : 'GET', agent: false }, (res) => {
        response = res;
        out.status = res.statusCode ?? 0;
        out.rawHeaders = res.rawHeaders;
        res.on('data', (d: Buffer) => (out.body = Buffer.concat([out.body, d])));
        res.on('end', () => {
          out.complete = res.complete;
          done();
        });
        res.on('error', (e: NodeJS.ErrnoException) => {
          out.error ??= e.code ?? 'ERROR';
          done();
        });
        res.on('close', done);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        // `complete` is set the moment llhttp ends the message (its body already emitted): an error after
        // it is about the bytes that followed.
        if (response?.complete === true) {
          out.complete = true;
          out.trailing = true;
        } else out.error ??= e.code ?? 'ERROR';
        done();
      });
      req.end();
      const guard = setTimeout(() => {
        out.error ??= 'ORACLE_TIMEOUT';
        req.destroy();
        done();
      }, GUARD_MS);
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.#server.close(() => r()));
  }
}
