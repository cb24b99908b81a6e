import type { Socket } from 'node:net';
import type { FastifyReply } from 'fastify';
import { ErrorCode, httpStatusOf, isUnderstudyError } from '../errors/index.js';
import type { ApiErrorBody } from './schemas.js';

/** A field-level problem of a request, carried in an UNDERSTUDY_ERR_API_REQUEST error's `details.problems`. */
export interface RequestProblem {
  field: string;
  message: string;
}

function isProblems(value: unknown): value is RequestProblem[] {
  return Array.isArray(value) && value.every((p) => typeof (p as RequestProblem)?.field === 'string');
}

/**
 * The status and body the API answers a thrown value with. An UnderstudyError keeps its code, with the
 * status of that code; an error fastify raised for a bad request (malformed JSON 400, body too large 413,
 * unsupported media type 415) keeps its status, as UNDERSTUDY_ERR_API_REQUEST; anything else is a 500
 * UNDERSTUDY_ERR_INTERNAL with the message and never a stack.
 */
export function errorReply(err: unknown): { status: number; body: ApiErrorBody } {
  if (isUnderstudyError(err)) {
    const problems = err.details.problems;
    // A standby's refusal names the leader's API, for clients to follow.
    const leader = err.code === ErrorCode.NotLeader ? err.details.leader : undefined;
    return {
      status: httpStatusOf(err.code),
      body: {
        error: {
          code: err.code,
          message: err.message,
          ...(isProblems(problems) ? { problems } : {}),
          ...(typeof leader === 'string' ? { leader } : {}),
        },
      },
    };
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    statusCode?: unknown;
    message?: unknown;
    code?: unknown;
  };
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : 'internal error';
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const what = typeof e.code === 'string' && e.code.startsWith('FST_ERR_CTP_') ? 'request body: ' : '';
    return { status: e.statusCode, body: { error: { code: ErrorCode.ApiRequest, message: what + message } } };
  }
  return { status: 500, body: { error: { code: ErrorCode.Internal, message } } };
}

/** Sends {@link errorReply} of `err`; a 401 also names the scheme it wants. */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body } = errorReply(err);
  if (status === 401) void reply.header('www-authenticate', 'Bearer');
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/**
 * Answers a request node's HTTP parser refused (malformed, headers too large, too slow) in the API's
 * error shape, then closes the connection: fastify's `clientErrorHandler`.
 */
export function clientErrorReply(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify({
    error: {
      code: ErrorCode.ApiRequest,
      message: `malformed or incomplete HTTP request (${err.code ?? 'parse error'})`,
    },
  } satisfies ApiErrorBody);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${REASONS[status] ?? 'Bad Request'}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
