import { randomUUID } from 'node:crypto';
import type { AfterResponse, HoldOutcome, Interceptor, RouterRequest } from '../router/index.js';
import { ErrorCode } from '../errors/index.js';
import { REPLAY_HEADERS } from './mutation.js';
import type { MutationTicket, ServiceReplication } from './service-replication.js';

/** Error codes the glue answers with. */
const NOT_REPLICATED = ErrorCode.NotReplicated;

interface InFlight {
  ticket: MutationTicket;
  requestId: string;
  settled: boolean;
}

/**
 * Connects a service's {@link ServiceReplication} to its router: every mutating request takes its turn
 * in its partition, gets an `x-request-id` if it has none (so replays and retries are applied once),
 * is forwarded to the primary, and — when the primary answered 2xx — is logged and replayed on the
 * echoes; in write-through mode the client's answer waits for them. A non-2xx answer, or no answer,
 * frees the partition without logging (the primary did not apply it).
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
    const partition = repl.partitionOf(req.path, req.headers);
    const ticket = await repl.begin(partition);
    const given = req.headers[REPLAY_HEADERS.requestId];
    const requestId = typeof given === 'string' && given ? given : randomUUID();
    const entry: InFlight = { ticket, requestId, settled: false };
    inFlight.set(req.id, entry);
    return {
      // Only add what the client did not send (the router appends extra headers to the client's).
      headers: {
        ...(requestId === given ? {} : { [REPLAY_HEADERS.requestId]: requestId }),
        [REPLAY_HEADERS.epoch]: String(epoch()),
      },
      holdResponse: async (info): Promise<HoldOutcome> => {
        if (entry.settled) return { release: true };
        entry.settled = true;
        if (info.statusCode < 200 || info.statusCode >= 300) {
          repl.abort(ticket);
          return { release: true };
        }
        const body = req.body ?? Buffer.alloc(0);
        const m = repl.commit(ticket, {
          method: req.method,
          path: req.path,
          headers: { ...req.headers, [REPLAY_HEADERS.requestId]: requestId },
          body,
        });
        const outcome = await repl.awaitEchoes(m.seq);
        if (outcome.acknowledge) return { release: true };
        return {
          release: false,
          status: 503,
          code: NOT_REPLICATED,
          message: `the primary applied this write (seq ${m.seq}) but ${outcome.logError === undefined ? 'no echo did within the timeout' : `the mutation log could not keep it (${outcome.logError})`}, and the service is strict; retry with the same x-request-id (${requestId}) to learn the outcome safely`,
        };
      },
    };
  };

  const afterResponse: AfterResponse = (req) => {
    const entry = inFlight.get(req.id);
    inFlight.delete(req.id);
    if (entry && !entry.settled) {
      entry.settled = true;
      repl.abort(entry.ticket);
    }
  };

  return { interceptor, afterResponse };
}
