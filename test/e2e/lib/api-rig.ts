import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer, type ApiControl } from '../../../src/api/index.js';
import type { ControlDecision, InstanceRecord, ServiceView } from '../../../src/control/index.js';

/** One call that reached the control plane stub (or the server's status/shutdown callbacks). */
export interface StubCall {
  method: string;
  args: unknown[];
}

function decision(kind: string, service: string): ControlDecision {
  return {
    seq: 1,
    at: 0,
    kind,
    service,
    what: kind,
    why: 'stub',
    inputs: {},
    outcome: { status: 'ok' },
  } as ControlDecision;
}

/**
 * A control plane that does nothing but record each call (and answer with plausible data), so a test
 * can prove which requests reached it. `failWith` makes every call throw that value instead.
 */
export class ControlStub implements ApiControl {
  readonly calls: StubCall[] = [];
  failWith: unknown = undefined;

  #record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failWith !== undefined) throw this.failWith;
  }

  async services(): Promise<ServiceView[]> {
    this.#record('services');
    return [{ name: 'kv', epoch: 1, instances: [] } as unknown as ServiceView];
  }
  instances(): InstanceRecord[] {
    this.#record('instances');
    return [{ id: 'kv-0', service: 'kv', role: 'primary' } as unknown as InstanceRecord];
  }
  async forceFailover(service: string, reason: string): Promise<ControlDecision> {
    this.#record('forceFailover', service, reason);
    return decision('failover', service);
  }
  async switchover(service: string, to?: string): Promise<ControlDecision> {
    this.#record('switchover', service, to);
    return decision('switchover', service);
  }
  async restartInstance(id: string, reason: string): Promise<ControlDecision> {
    this.#record('restartInstance', id, reason);
    return decision('restart', id);
  }
  async pause(service: string, reason: string): Promise<ControlDecision> {
    this.#record('pause', service, reason);
    return decision('pause', service);
  }
  async resume(service: string, reason: string): Promise<ControlDecision> {
    this.#record('resume', service, reason);
    return decision('resume', service);
  }
  eventLoopDelay(): { p50Ms: number; p99Ms: number; maxMs: number } {
    this.#record('eventLoopDelay');
    return { p50Ms: 0, p99Ms: 0, maxMs: 0 };
  }
  readonly decisions: ApiControl['decisions'] = {
    list: async (options) => {
      this.#record('decisions.list', options);
      return [];
    },
    subscribe: (listener) => {
      this.#record('decisions.subscribe', listener);
      return () => {};
    },
  };
}

/** A real ApiServer on 127.0.0.1:0 over a {@link ControlStub}, in its own data directory. */
export interface ApiRig {
  api: ApiServer;
  stub: ControlStub;
  dataDir: string;
  token: string;
  port: number;
  close(): Promise<void>;
}

/** Starts an {@link ApiRig}; `close()` stops the server and removes the data directory. */
export async function startApiRig(
  dataDir = mkdtempSync(join(tmpdir(), 'understudy-api-rig-')),
  options: { requestTimeoutMs?: number } = {},
): Promise<ApiRig> {
  const stub = new ControlStub();
  const api = await ApiServer.start({
    control: stub,
    dataDir,
    ...options,
    onShutdown: (reason) => stub.calls.push({ method: 'onShutdown', args: [reason] }),
    status: () => {
      stub.calls.push({ method: 'status', args: [] });
      return {};
    },
  });
  const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
  return {
    api,
    stub,
    dataDir,
    token,
    port: Number(new URL(api.endpoint.url).port),
    close: async () => {
      await api.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** What came back on a raw connection: the status (0 if none), the headers (lower case) and the body. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

function parseResponse(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  return { status: status ? Number(status) : 0, headers, body: end < 0 ? '' : raw.slice(end + 4), raw };
}

/**
 * Sends `request` byte for byte on a new TCP connection (no client library normalises the target) and
 * collects the answer until the server closes, an event stream starts, or `giveUpMs` passes (a safety
 * net so a wrongly opened stream cannot hang the test; nothing asserts on time).
 */
export function sendRaw(port: number, request: string | Buffer, giveUpMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1')));
    };
    const timer = setTimeout(done, giveUpMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      const sofar = Buffer.concat(chunks).toString('latin1');
      if (sofar.includes('\r\n\r\n') && /content-type: text\/event-stream/i.test(sofar)) done();
    });
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', done);
  });
}

/** Builds an HTTP/1.1 request with `connection: close`; `host` defaults to this listener's address. */
export function rawRequest(
  port: number,
  method: string,
  target: string,
  options: { headers?: Record<string, string>; body?: string; host?: string | null } = {},
): string {
  const headers: Record<string, string> = {
    ...(options.host === null ? {} : { host: options.host ?? `127.0.0.1:${port}` }),
    connection: 'close',
    ...(options.body !== undefined && !options.headers?.['transfer-encoding']
      ? { 'content-length': String(Buffer.byteLength(options.body)) }
      : {}),
    ...options.headers,
  };
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${options.body ?? ''}`;
}
