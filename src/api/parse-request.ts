import type { z } from 'zod';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { RequestProblem } from './error-reply.js';

/** Thrown when `value` does not match `schema`: UNDERSTUDY_ERR_API_REQUEST naming each field. */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const problems: RequestProblem[] = r.error.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown key(s): ${i.keys.join(', ')}` : i.message,
  }));
  throw new UnderstudyError(
    ErrorCode.ApiRequest,
    problems.map((p) => `${p.field}: ${p.message}`).join('; '),
    { details: { problems } },
  );
}
