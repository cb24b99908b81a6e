import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlDecision, FailoverHistoryEntry, InstanceRecord, ServiceView } from '../control/index.js';
import { ErrorCode, UnderstudyError, isErrorCode, isUnderstudyError } from '../errors/index.js';
import { API_ENDPOINT_FILE, type ApiEndpoint } from './api-server.js';
import { isLocalProcessAlive } from '../store/index.js';
import { readToken } from './token.js';

/** A client of a running control plane's API, found through its data directory. */
export class ApiClient {
  private constructor(
    readonly endpoint: ApiEndpoint,
    private readonly token: string,
  ) {}

  /** Thrown when no control plane runs with this data directory: UNDERSTUDY_ERR_API_UNREACHABLE. */
  static fromDataDir(dataDir: string): ApiClient {
    let endpoint: ApiEndpoint;
    try {
      endpoint = JSON.parse(readFileSync(join(dataDir, API_ENDPOINT_FILE), 'utf8')) as ApiEndpoint;
    } catch (err) {
      throw new UnderstudyError(
        ErrorCode.ApiUnreachable,
        `no control plane is running with data directory ${dataDir} (start one with 'understudy up')`,
        {
          cause: err,
        },
      );
    }
    if (!isLocalProcessAlive(endpoint.pid)) {
      throw new UnderstudyError(
        ErrorCode.ApiUnreachable,
        `no control plane is running with data directory ${dataDir} (the last one, pid ${endpoint.pid}, is gone; start one with 'understudy up')`,
      );
    }
    return new ApiClient(endpoint, readToken(dataDir));
  }

  /**
   * Sends one request. A standby control replica refuses writes with UNDERSTUDY_ERR_NOT_LEADER naming
   * the leader's API: the request is sent there once (with the same token: replicas started with a
   * cluster key share it).
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.#send<T>(this.endpoint.url, method, path, body);
    } catch (err) {
      const leader = (err as UnderstudyError).details?.leader;
      if (!isUnderstudyError(err, ErrorCode.NotLeader) || typeof leader !== 'string') throw err;
      if (leader === this.endpoint.url) throw err;
      return this.#send<T>(leader, method, path, body);
    }
  }

  async #send<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new UnderstudyError(
        ErrorCode.ApiUnreachable,
        base === this.endpoint.url
          ? `the control plane at ${this.endpoint.url} (pid ${this.endpoint.pid}) did not answer; it may have stopped`
          : `the control leader at ${base} did not answer (this replica's API sent the request there); it may have stopped`,
        { cause: err },
      );
    }
    const json = (await res.json().catch(() => ({}))) as {
      error?: { code: string; message: string; leader?: string };
    };
    if (!res.ok) {
      // The code comes from the server: kept only if it is one of ours.
      const code = json.error?.code;
      throw new UnderstudyError(
        isErrorCode(code) ? code : ErrorCode.ApiRequest,
        json.error?.message ?? `HTTP ${res.status}`,
        {
          details: {
            status: res.status,
            ...(typeof json.error?.leader === 'string' ? { leader: json.error.leader } : {}),
          },
        },
      );
    }
    return json as T;
  }

  async services(): Promise<ServiceView[]> {
    return (await this.request<{ services: ServiceView[] }>('GET', '/v1/services')).services;
  }
  async instances(): Promise<InstanceRecord[]> {
    return (await this.request<{ instances: InstanceRecord[] }>('GET', '/v1/instances')).instances;
  }
  async events(query: { after?: number; limit?: number; service?: string } = {}): Promise<ControlDecision[]> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    return (await this.request<{ events: ControlDecision[] }>('GET', `/v1/events${qs.size ? `?${qs}` : ''}`))
      .events;
  }
  async status(): Promise<Record<string, unknown>> {
    return this.request('GET', '/v1/status');
  }
  async restart(instance: string, reason?: string, force?: boolean): Promise<ControlDecision> {
    return (
      await this.request<{ decision: ControlDecision }>(
        'POST',
        `/v1/instances/${encodeURIComponent(instance)}/restart`,
        { ...(reason ? { reason } : {}), ...(force ? { force } : {}) },
      )
    ).decision;
  }
  async failover(service: string, reason?: string, to?: string): Promise<ControlDecision> {
    return (
      await this.request<{ decision: ControlDecision }>(
        'POST',
        `/v1/services/${encodeURIComponent(service)}/failover`,
        { ...(reason ? { reason } : {}), ...(to ? { to } : {}) },
      )
    ).decision;
  }
  /** Maintenance mode on (`pause`) or off (`resume`). */
  async maintenance(verb: 'pause' | 'resume', service: string, reason?: string): Promise<ControlDecision> {
    return (
      await this.request<{ decision: ControlDecision }>(
        'POST',
        `/v1/services/${encodeURIComponent(service)}/${verb}`,
        reason ? { reason } : {},
      )
    ).decision;
  }
  async history(service: string, limit?: number): Promise<FailoverHistoryEntry[]> {
    const qs = limit === undefined ? '' : `?limit=${limit}`;
    return (
      await this.request<{ history: FailoverHistoryEntry[] }>(
        'GET',
        `/v1/services/${encodeURIComponent(service)}/history${qs}`,
      )
    ).history;
  }
  async switchover(service: string, to?: string): Promise<ControlDecision> {
    return (
      await this.request<{ decision: ControlDecision }>(
        'POST',
        `/v1/services/${encodeURIComponent(service)}/switchover`,
        to ? { to } : {},
      )
    ).decision;
  }
  async shutdown(reason?: string): Promise<void> {
    await this.request('POST', '/v1/shutdown', reason ? { reason } : {});
  }
}
