import { z } from 'zod';
import { parseBytes, parseDuration } from './units.js';

/** The field types the `understudy.yaml` schemas share (durations, sizes, ports, addresses). */

/** A duration: milliseconds as a number, or a string such as `250ms`, `1.5s`, `2m`. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as 500ms, 2s or 1m, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A size in bytes: a number, or a string such as `256Mi`, `1G`, `512KiB`. */
export const bytes = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  const n = parseBytes(v);
  if (n === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size such as 256Mi, 1Gi or 1048576, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return n;
});

export const portNumber = z.number().int().min(0).max(65535);
export const portName = z
  .string()
  .regex(/^[a-z][a-z0-9-]*$/, 'expected a port name of lowercase letters, digits and dashes');

/** `host:port` listen address. */
export const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8080');
