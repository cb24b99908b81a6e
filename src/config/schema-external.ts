import { z } from 'zod';
import { duration, portName } from './schema-fields.js';

/**
 * One hook of an external echo (docs/recipes.md, "The hook contract"): exactly one of `exec` (argv run
 * on the instance's host, no shell; exit 0 is success) or `http` (a POST to the instance; 2xx is success).
 */
export const externalHookSchema = z
  .strictObject({
    /** argv run in the service's cwd with the hook's context in `UNDERSTUDY_*` environment variables. */
    exec: z.array(z.string().min(1)).min(1, 'expected at least the program to run').optional(),
    /** POST to `path` on the instance's named `port` (default: the routed port), the context as JSON. */
    http: z
      .strictObject({
        path: z.string().startsWith('/', 'expected a path starting with /'),
        port: portName.optional(),
      })
      .optional(),
    /** This hook's timeout. @default `echo.external.timeout` */
    timeout: duration.optional(),
  })
  .refine((h) => (h.exec === undefined) !== (h.http === undefined), {
    message: 'a hook is exactly one of exec: [argv...] or http: { path }',
  });

/**
 * `echo.mode: external`: the service's own replication keeps the echo in sync; Understudy runs these
 * hooks around it (docs/recipes.md).
 */
export const externalEchoSchema = z
  .strictObject({
    /** Runs before an echo's process starts (e.g. `pg_basebackup`, `pg_rewind`). @default none */
    prepare: externalHookSchema.optional(),
    /** Runs once a new echo is ready: make it follow the primary (e.g. `REPLICAOF host port`). @default none */
    follow: externalHookSchema.optional(),
    /** Runs every `lagInterval` on each running echo; prints `{"lagBytes":N}`. @default none */
    lag: externalHookSchema.optional(),
    /** Runs on the chosen echo at a failover or switchover (e.g. `REPLICAOF NO ONE`). Required. */
    promote: externalHookSchema,
    /** Runs after the old primary's process group was killed: fencing outside the process. @default none */
    fence: externalHookSchema.optional(),
    /** Runs once the old primary, restarted as an echo, is ready. @default the follow hook */
    rejoin: externalHookSchema.optional(),
    /** Timeout of a hook that sets none. @default 5s */
    timeout: duration.default(5000),
    /** Time between two lag readings of an echo. @default 1s */
    lagInterval: duration.default(1000),
  })
  .refine((e) => e.prepare !== undefined || e.follow !== undefined, {
    message: 'an external echo must be told whom to follow: declare follow (after start) or prepare (before)',
    path: ['follow'],
  });

export type ExternalEchoSpec = z.output<typeof externalEchoSchema>;
export type ExternalHookSpec = z.output<typeof externalHookSchema>;
