import { randomUUID } from 'node:crypto';
import type { AfterResponse, HoldOutcome, Interceptor, RouterRequest } from '../router/index.js';
import { ErrorCode } from '../errors/index.js';
import { REPLAY_HEADERS } from './mutation.js';
import type { MutationRequest, MutationTicket, ServiceReplication } from './service-replication.js';

/** Error codes the glue answers with. */
const NOT_REPLICATED = ErrorCode.NotReplicated;

interface InFlight {
  /** Serial order: the partition turn held. */
  ticket?: MutationTicket;
  /** Pipelined order: the seq assigned at arrival and the request, resolved once. */
  seq?: number;
  request?: MutationRequest;
  requestId: string;
  settled: boolean;
}

/**
 * Connects a service's {@link ServiceReplication} to its router: every mutating request takes its turn
 * in its partition, gets an `x-request-id` if it has none (so replays and retries are applied once),
 * is forwarded to the primary, and — when the primary answered 2xx — is logged and replayed on the
 * echoes; in write-through mode the client's answer waits for them. A non-2xx answer, or no answer,
 * frees the partition without logging (the primary did not apply it). The router stamps each attempt
 * with `x-understudy-epoch`: the epoch of the primary it goes to (a write held across a switch or retried on
 * the promoted primary carries the new epoch), and the write is logged under the epoch it was applied under.
 *
 * Pipelined order: no turn is waited for. Each mutation is numbered at arrival (`x-understudy-seq`,
 * `x-understudy-stream`) and forwarded at once; the primary orders them. Its answer resolves the seq
 * (2xx: `apply`, else `skip`); no answer asks the primary how it consumed the seq
 * ({@link ServiceReplication.resolveUnanswered}). The epoch is stamped at arrival with the seq, and every
 * attempt carries that stamp: epochs then never decrease along the seq order, which the instances'
 * in-order fencing needs (a later seq the old primary applied is replayed with the older epoch).
 */
export function replicationHooks(
  repl: ServiceReplication,
  epoch: () => number,
): { interceptor: Interceptor; afterResponse: AfterResponse } {
  const inFlight = new Map<number, InFlight>();

  const interceptor: Interceptor = async (req: RouterRequest) => {
    if (!repl.isMutation(req.method, req.path, req.headers)) return undefined;
    if (req.body === null) {
      return {
        respond: {
          status: 413,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            error: {
              code: NOT_REPLICATED,
              message:
                'request body too large to replicate to the echo; raise the router buffer or send smaller writes',
            },
          }),
        },
      };
    }
    const given = req.headers[REPLAY_HEADERS.requestId];
    const requestId = typeof given === 'string' && given ? given : randomUUID();
    // Only add what the client did not send (the router appends extra headers to the client's).
    const idHeader = requestId === given ? {} : { [REPLAY_HEADERS.requestId]: requestId };
    // What is logged and replayed: the client's headers (read-only; the router made them for this
    // request), with the request id when the router chose it — copied only then.
    const headers = requestId === given ? req.headers : { ...req.headers, ...idHeader };
    const refuse = (seq: number, logError?: string): HoldOutcome => ({
      release: false,
      status: 503,
      code: NOT_REPLICATED,
      message: `the primary applied this write (seq ${seq}) but ${logError === undefined ? 'no echo did within the timeout' : `the mutation log could not keep it (${logError})`}, and the service is strict; retry with the same x-request-id (${requestId}) to learn the outcome safely`,
    });
    if (repl.order === 'pipelined') {
      // After a restart, no seq is handed out before the primary's position is known.
      const ready = repl.sequencingReady();
      if (ready) await ready;
      const stamped = epoch();
      const seq = repl.sequence();
      const request: MutationRequest = {
        method: req.method,
        path: req.path,
        headers,
        body: req.body,
        epoch: stamped,
      };
      const entry: InFlight = { seq, request, requestId, settled: false };
      inFlight.set(req.id, entry);
      return {
        headers: {
          ...idHeader,
          [REPLAY_HEADERS.epoch]: String(stamped),
          [REPLAY_HEADERS.seq]: String(seq),
          [REPLAY_HEADERS.stream]: repl.stream,
        },
        holdResponse: async (info): Promise<HoldOutcome> => {
          if (entry.settled) return { release: true };
          entry.settled = true;
          const applied = info.statusCode >= 200 && info.statusCode < 300;
          repl.resolve(seq, request, applied ? 'apply' : 'skip', info.backendId);
          if (!applied) return { release: true };
          const outcome = await repl.awaitEchoes(seq);
          return outcome.acknowledge ? { release: true } : refuse(seq, outcome.logError);
        },
      };
    }
    const partition = repl.partitionOf(req.path, req.headers);
    const ticket = await repl.begin(partition);
    const entry: InFlight = { ticket, requestId, settled: false };
    inFlight.set(req.id, entry);
    return {
      // Stamped by the router per attempt with the epoch of the primary the attempt goes to: a write held
      // across a switch, or retried on the promoted primary, reaches it under that primary's epoch.
      headers: idHeader,
      epochHeader: REPLAY_HEADERS.epoch,
      holdResponse: async (info): Promise<HoldOutcome> => {
        if (entry.settled) return { release: true };
        entry.settled = true;
        if (info.statusCode < 200 || info.statusCode >= 300) {
          repl.abort(ticket);
          return { release: true };
        }
        const body = req.body ?? Buffer.alloc(0);
        // Logged (and replayed) under the epoch it was sent and applied under: its primary's.
        const m = repl.commit(ticket, {
          method: req.method,
          path: req.path,
          headers,
          body,
          epoch: info.epoch,
        });
        const outcome = await repl.awaitEchoes(m.seq);
        return outcome.acknowledge ? { release: true } : refuse(m.seq, outcome.logError);
      },
    };
  };

  const afterResponse: AfterResponse = (req, outcome) => {
    const entry = inFlight.get(req.id);
    inFlight.delete(req.id);
    if (entry && !entry.settled) {
      entry.settled = true;
      if (entry.ticket) repl.abort(entry.ticket);
      // A write held or retried across a promotion may have been applied by the new primary, under its
      // arrival stamp: it is skipped without asking only once that primary is fenced too.
      if (entry.seq !== undefined && entry.request)
        void repl.resolveUnanswered(entry.seq, entry.request, outcome.epoch);
    }
  };

  return { interceptor, afterResponse };
}
