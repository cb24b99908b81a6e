import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { resolveRouterOptions } from './router-options.js';

describe('resolveRouterOptions: client deadlines and the connection cap', () => {
  it('defaults to a 10 s head deadline, a 300 s request deadline and 10000 connections', () => {
    const o = resolveRouterOptions({ service: 's' });
    expect([o.requestHeadTimeoutMs, o.requestTimeoutMs, o.maxConnections]).toEqual([10_000, 300_000, 10_000]);
  });

  it.each([
    ['a head deadline of 0', { requestHeadTimeoutMs: 0 }, 'requestHeadTimeoutMs'],
    ['an infinite request deadline', { requestTimeoutMs: Infinity }, 'requestTimeoutMs'],
    [
      'a request deadline shorter than the head deadline',
      { requestHeadTimeoutMs: 5000, requestTimeoutMs: 1000 },
      'requestTimeoutMs',
    ],
    ['a connection cap of 0', { maxConnections: 0 }, 'maxConnections'],
    ['a fractional connection cap', { maxConnections: 1.5 }, 'maxConnections'],
  ])('refuses %s', (_why, opts, field) => {
    expect(() => resolveRouterOptions({ service: 's', ...opts })).toThrow(
      expect.objectContaining({ code: ErrorCode.RouterConfig, details: { field } }),
    );
  });
});
