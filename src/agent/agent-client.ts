import { Agent as Dispatcher, request } from 'undici';
import { ErrorCode, isErrorCode, UnderstudyError } from '../errors/index.js';
import type { AgentCallBody, AgentMethod, AgentStreamLine } from './agent-wire.js';
import type { TlsIdentity } from './cluster-ca.js';

/** Options of {@link AgentClient}. */
export interface AgentClientOptions {
  /** Host name of the agent (for error messages). */
  host: string;
  /** Base URL of the agent API, e.g. `https://10.0.0.5:7700`. */
  url: string;
  /** The cluster secret. */
  secret: string;
  /**
   * Speak TLS with this identity: the agent's certificate must be issued by `tls.ca` and name the
   * address of `url`; this process's certificate is presented to the agent. An `http://` URL is then
   * refused (UNDERSTUDY_ERR_TLS_REQUIRED): the cluster key never travels in clear. @default none: plain HTTP
   */
  tls?: TlsIdentity;
  /** Time allowed for one call beyond the time the operation itself is given, ms. @default 10000 */
  requestTimeoutMs?: number;
}

/**
 * The HTTP side of a `RemoteAgent`: one call per agent method (undici, keep-alive connections) and the
 * event stream. A connection failure or timeout becomes UNDERSTUDY_ERR_AGENT_UNREACHABLE naming the
 * host and address; an error reply keeps the agent's code and message.
 */
export class AgentClient {
  readonly #dispatcher: Dispatcher;
  readonly #auth: string;
  readonly #timeout: number;
  /** Set when the URL's scheme and this client's TLS setting disagree: every call fails with it. */
  readonly #refused: UnderstudyError | undefined;

  constructor(private readonly options: AgentClientOptions) {
    const tls = options.tls;
    this.#dispatcher = new Dispatcher({
      keepAliveTimeout: 4000,
      connect: {
        timeout: 5000,
        ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' } : {}),
      },
    });
    const https = options.url.startsWith('https:');
    if (tls && !https)
      this.#refused = new UnderstudyError(
        ErrorCode.TlsRequired,
        `the agent of host '${options.host}' advertises plain ${options.url}, but this cluster runs TLS: refusing to send the cluster key in clear (start that agent without --no-tls, or this process with --no-tls)`,
        { details: { host: options.host, url: options.url } },
      );
    else if (!tls && https)
      this.#refused = new UnderstudyError(
        ErrorCode.TlsRequired,
        `the agent of host '${options.host}' serves HTTPS (${options.url}), but this process runs without TLS (--no-tls): start it with TLS (the cluster CA beside the cluster key)`,
        { details: { host: options.host, url: options.url } },
      );
    this.#auth = `Bearer ${options.secret}`;
    this.#timeout = options.requestTimeoutMs ?? 10_000;
  }

  #unreachable(what: string, err: unknown): UnderstudyError {
    const e = err as { code?: string; message?: string };
    const why = e.code ?? e.message ?? String(err);
    if (e.code !== undefined && TLS_REFUSALS.test(e.code))
      return new UnderstudyError(
        ErrorCode.TlsCertificate,
        `the agent of host '${this.options.host}' at ${this.options.url} presented a certificate this process refuses (${what}: ${e.code}: ${e.message ?? ''}): is cluster-ca.pem the same file on every host?`,
        { cause: err, details: { host: this.options.host, url: this.options.url, tlsError: e.code } },
      );
    return new UnderstudyError(
      ErrorCode.AgentUnreachable,
      `the agent of host '${this.options.host}' at ${this.options.url} is unreachable (${what}: ${why})`,
      { cause: err, details: { host: this.options.host, url: this.options.url } },
    );
  }

  /**
   * Calls one method. `extraMs` is the time the operation itself may take (a stop's grace period, a
   * probe's timeout) on top of the request timeout.
   */
  async call<M extends AgentMethod, R>(method: M, body: AgentCallBody<M>, extraMs = 0): Promise<R> {
    if (this.#refused) throw this.#refused;
    const timeout = this.#timeout + extraMs;
    let res;
    try {
      res = await request(`${this.options.url}/v1/${method}`, {
        method: 'POST',
        dispatcher: this.#dispatcher,
        headers: { authorization: this.#auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      throw this.#unreachable(method, err);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw this.#unreachable(method, err);
    }
    const parsed = parseJson(text);
    if (res.statusCode >= 200 && res.statusCode < 300) return parsed as R;
    const error = (
      parsed as { error?: { code?: unknown; message?: unknown; problems?: unknown } } | undefined
    )?.error;
    const code = isErrorCode(error?.code) ? error.code : ErrorCode.Internal;
    const message = typeof error?.message === 'string' ? error.message : `HTTP ${res.statusCode}`;
    throw new UnderstudyError(code, `agent '${this.options.host}': ${message}`, {
      details: {
        host: this.options.host,
        status: res.statusCode,
        ...(error?.problems ? { problems: error.problems } : {}),
      },
    });
  }

  /**
   * Reads the event stream once (until it ends, fails, or `signal` aborts), handing each line to
   * `onLine`. Resolves when the stream ends; rejects with UNDERSTUDY_ERR_AGENT_UNREACHABLE when it
   * cannot be opened or stalls for `idleMs` (the agent sends a keep-alive line every few seconds).
   */
  async stream(
    query: { after: number; boot: string; client: string },
    idleMs: number,
    signal: AbortSignal,
    onLine: (line: AgentStreamLine) => void,
  ): Promise<void> {
    if (this.#refused) throw this.#refused;
    const qs = new URLSearchParams({ after: String(query.after), boot: query.boot, client: query.client });
    let res;
    try {
      res = await request(`${this.options.url}/v1/events?${qs}`, {
        dispatcher: this.#dispatcher,
        headers: { authorization: this.#auth },
        headersTimeout: this.#timeout,
        bodyTimeout: idleMs,
        signal,
      });
    } catch (err) {
      throw this.#unreachable('events', err);
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      throw new UnderstudyError(
        res.statusCode === 401 ? ErrorCode.ApiAuth : ErrorCode.AgentUnreachable,
        `agent '${this.options.host}' refused the event stream (HTTP ${res.statusCode}): ${text.slice(0, 200)}`,
      );
    }
    let rest = '';
    try {
      for await (const chunk of res.body) {
        rest += (chunk as Buffer).toString('utf8');
        let nl;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          const parsed = parseJson(line) as AgentStreamLine | undefined;
          if (parsed && typeof parsed.type === 'string') onLine(parsed);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw this.#unreachable('events', err);
    }
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    await this.#dispatcher.destroy().catch(() => undefined);
  }
}

/** Error codes of a TLS handshake that refused the peer's certificate (node's and OpenSSL's names). */
const TLS_REFUSALS =
  /^(?:ERR_TLS_CERT_ALTNAME_INVALID|ERR_SSL_.*|CERT_.*|.*_SELF_SIGNED_CERT.*|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_.*|DEPTH_ZERO_SELF_SIGNED_CERT|INVALID_CA|ERR_TLS_.*)$/;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
