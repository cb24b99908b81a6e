// Which requests are mutations under a service's rules (the spec's `echo.mutations`), and their order
// key: pure functions of the rules and the request as the router normalised it.
import { methodOverrides, pathMayMatch } from '../router/index.js';
import type { MutationRules } from './replication-types.js';

/**
 * Whether a request is a mutation under `rules`: a mutating method (itself, or asked for by a
 * method-override header; `headers` with lower-case names) and a path that may be under one of the
 * mutation paths as a backend could read it ({@link pathMayMatch}: conservative, so no spelling of a
 * write escapes replication).
 */
export function isMutationUnder(
  rules: Pick<MutationRules, 'methods' | 'paths'>,
  method: string,
  path: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): boolean {
  const { methods, paths } = rules;
  const mutating =
    methods.includes(method.toUpperCase()) || methodOverrides(headers).some((m) => methods.includes(m));
  return mutating && pathMayMatch(path, paths);
}

/** The order key of a mutation under `rules.partitionBy` ('' for the total order). */
export function partitionUnder(
  rules: Pick<MutationRules, 'partitionBy'>,
  path: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): string {
  const by = rules.partitionBy;
  if (!by) return '';
  if ('header' in by) {
    const v = headers[by.header.toLowerCase()];
    return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
  }
  return path.split('?')[0]?.split('/').filter(Boolean)[by.pathSegment] ?? '';
}
