import { describe, expect, it } from 'vitest';
import { ErrorCode, UnderstudyError, type ErrorCodeValue } from '../errors/index.js';
import { errorReply } from './error-reply.js';

describe('the API error reply', () => {
  it('keeps the code of an UnderstudyError and answers with its HTTP status', () => {
    const cases: [ErrorCodeValue, number][] = [
      [ErrorCode.StoreConflict, 409],
      [ErrorCode.Usage, 400],
      [ErrorCode.ApiRequest, 400],
      [ErrorCode.NotReplicated, 503],
      [ErrorCode.NotFound, 404],
      [ErrorCode.Failover, 409],
      [ErrorCode.StoreUnavailable, 503],
    ];
    for (const [code, status] of cases) {
      const r = errorReply(new UnderstudyError(code, `it went wrong: ${code}`));
      expect(r).toEqual({ status, body: { error: { code, message: `it went wrong: ${code}` } } });
    }
  });

  it('carries the field problems of a request error', () => {
    const problems = [{ field: 'body.reason', message: 'expected string' }];
    const r = errorReply(
      new UnderstudyError(ErrorCode.ApiRequest, 'body.reason: expected string', { details: { problems } }),
    );
    expect(r.body.error.problems).toEqual(problems);
  });

  it("answers a standby's NOT_LEADER with 503 and the leader's API URL; other errors never carry one", () => {
    const details = { leader: 'http://10.0.0.2:7070', leaderId: 'ctl-b' };
    const r = errorReply(new UnderstudyError(ErrorCode.NotLeader, 'pause: a standby', { details }));
    expect(r.status).toBe(503);
    expect(r.body.error).toEqual({
      code: ErrorCode.NotLeader,
      message: 'pause: a standby',
      leader: 'http://10.0.0.2:7070',
    });
    expect(errorReply(new UnderstudyError(ErrorCode.Failover, 'x', { details })).body.error.leader).toBe(
      undefined,
    );
  });

  it('answers an error without a code with 500 UNDERSTUDY_ERR_INTERNAL, its message and no stack', () => {
    const err = new Error('disk on fire');
    const r = errorReply(err);
    expect(r).toEqual({
      status: 500,
      body: { error: { code: ErrorCode.Internal, message: 'disk on fire' } },
    });
    expect(JSON.stringify(r.body)).not.toContain('at ');
    expect(errorReply('a string').body.error).toEqual({
      code: ErrorCode.Internal,
      message: 'internal error',
    });
    expect(errorReply(null).status).toBe(500);
  });

  it("keeps the status of fastify's own request errors, under UNDERSTUDY_ERR_API_REQUEST", () => {
    const fastifyError = (statusCode: number, code: string): Error =>
      Object.assign(new Error(`fastify said ${code}`), { statusCode, code });
    for (const [status, code] of [
      [400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
      [413, 'FST_ERR_CTP_BODY_TOO_LARGE'],
      [415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
    ] as const) {
      const r = errorReply(fastifyError(status, code));
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(ErrorCode.ApiRequest);
    }
    expect(errorReply(fastifyError(503, 'FST_ERR_SOMETHING')).body.error.code).toBe(ErrorCode.Internal);
  });
});
