import { z } from 'zod';
import { bytes, duration, listenAddress, portName, portNumber } from './schema-fields.js';
import { externalEchoSchema } from './schema-external.js';

export { externalEchoSchema, externalHookSchema } from './schema-external.js';
export type { ExternalEchoSpec, ExternalHookSpec } from './schema-external.js';

/**
 * The `understudy.yaml` schema. Every field has a documented default; unknown keys are rejected
 * (with a did-you-mean) so that a typo never silently falls back to a default.
 */

const httpCheck = z.strictObject({
  /** Path requested with GET; a 2xx or 3xx answer is healthy. */
  path: z.string().startsWith('/', 'expected a path starting with /'),
  /** Named port to check. @default the first port */
  port: portName.optional(),
});
const tcpCheck = z.strictObject({
  /** Named port to connect to. @default the first port */
  port: portName.optional(),
});

export const healthSchema = z
  .strictObject({
    /** HTTP GET check. */
    http: httpCheck.optional(),
    /** TCP connect check. */
    tcp: tcpCheck.optional(),
    /** Command run in the instance's cwd; exit 0 is healthy. */
    exec: z.array(z.string().min(1)).min(1).optional(),
    /** Time between checks. @default 1s */
    interval: duration.default(1000),
    /** A check slower than this fails. @default 500ms */
    timeout: duration.default(500),
    /** Consecutive failures before the instance is unhealthy. @default 3 */
    failureThreshold: z.number().int().min(1).default(3),
    /** Grace period after start before failures count. @default 10s */
    startPeriod: duration.default(10_000),
  })
  .refine((h) => [h.http, h.tcp, h.exec].filter((c) => c !== undefined).length <= 1, {
    message: 'choose one of http, tcp or exec',
  });

export const syncSchema = z.strictObject({
  /** `continuous` sends changes as they settle; `relaxed` sends on the interval only. @default continuous */
  mode: z.enum(['continuous', 'relaxed']).default('continuous'),
  /** Longest time between syncs. @default 1s */
  interval: duration.default(1000),
  /** Sync at once when this many bytes changed. @default 1Mi */
  bytesThreshold: bytes.default(1024 * 1024),
  /** Sync more eagerly as the primary's CPU use rises above this fraction. @default 0.7 */
  utilizationThreshold: z.number().min(0).max(1).default(0.7),
  /** Bandwidth cap in bytes per second; 0 means none. @default 0 */
  bandwidthLimit: bytes.default(0),
  /** Priority classes, highest first: glob patterns relative to the state directory. */
  priorities: z
    .array(z.strictObject({ name: z.string().min(1), patterns: z.array(z.string().min(1)).min(1) }))
    .default([
      { name: 'data', patterns: ['**/*.log', '**/*.db', '**/*.dat', 'data/**'] },
      { name: 'code', patterns: ['**/*.js', '**/*.mjs', '**/*.so', 'bin/**', 'lib/**'] },
      { name: 'config', patterns: ['**/*'] },
    ]),
  /** Paths never synced (glob). */
  exclude: z.array(z.string().min(1)).default([]),
});

export const mutationLogSchema = z.strictObject({
  /** Bytes of segments kept on disk; the oldest segments are deleted past it. @default 256Mi */
  maxBytes: bytes.default(256 * 1024 * 1024),
  /** Segments whose newest mutation is older than this are deleted. @default 24h */
  maxAge: duration.default(24 * 3_600_000),
  /** A segment file is closed and a new one started at this size. @default 16Mi */
  segmentBytes: bytes.default(16 * 1024 * 1024),
});

export const mutationsSchema = z.strictObject({
  /** Methods that mutate state. @default [POST, PUT, PATCH, DELETE] */
  methods: z
    .array(z.string().regex(/^[A-Z]+$/, 'expected an HTTP method in capitals'))
    .default(['POST', 'PUT', 'PATCH', 'DELETE']),
  /** Path prefixes the methods mutate under. @default ['/'] */
  paths: z.array(z.string().startsWith('/')).default(['/']),
  /**
   * Order key: mutations with different keys may run concurrently, those with the same key keep the
   * primary's order. Unset: one total order per service.
   */
  partitionBy: z
    .union([
      z.strictObject({ header: z.string().min(1) }),
      z.strictObject({ pathSegment: z.number().int().min(0) }),
    ])
    .optional(),
  /** An echo that has not applied a mutation within this time leaves the synchronous set. @default 1s */
  timeout: duration.default(1000),
  /**
   * Write-through only: answer 503 rather than acknowledge a write no echo has applied — also while no
   * echo is in the synchronous set or attached at all (Patroni's `synchronous_mode_strict`). `false`:
   * such a write is acknowledged on the primary alone and counted at risk (`synchronous_mode`). @default false
   */
  strict: z.boolean().default(false),
  /**
   * How mutations reach the primary and the hot echoes. `serial`: one in flight per partition (the order
   * of the primary's answers is the order) — works with any service. `pipelined`: the router numbers each
   * mutation at arrival (`x-understudy-seq`) and sends many at once; the service must keep the instance
   * contract of docs/failover.md (apply in seq order, consume every seq once, answer skips). Choose it
   * only for a service that declares it keeps that contract (examples/kv does). @default serial
   */
  order: z.enum(['serial', 'pipelined']).default('serial'),
  /** Requests safe to retry on another instance after a failure mid-request. @default [GET, HEAD, OPTIONS, PUT, DELETE] */
  idempotent: z.array(z.string().regex(/^[A-Z]+$/)).default(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']),
  /**
   * The durable mutation log (`<dataDir>/mutations/<service>/`): a lagging or restarted echo, and the
   * hot echoes after a control-process restart, catch up by replay from it while it still holds their
   * position, instead of a full copy of the primary's state.
   */
  log: mutationLogSchema.prefault({}),
  /**
   * How to ask a hot echo which mutation it applied last, so that it can be resumed by replay (after a
   * control-process restart or its own restart): a GET of `path` on its first port answers JSON whose
   * `field` is the highest `x-understudy-seq` it applied (examples/kv: `/stats`, `understudySeq`).
   * Only used with the total order (no `partitionBy`). Unset: such echoes are compared with the
   * primary's state and rebuilt from a snapshot when they differ.
   */
  appliedSeq: z.strictObject({ path: z.string().startsWith('/'), field: z.string().min(1) }).optional(),
  /**
   * Pipelined order only: replicate to each hot echo in batches — up to `max` mutations in one POST to
   * `path` (framed: a JSON line, then the bodies), which the instance applies in seq order and answers
   * per mutation (docs/failover.md, "Batched replication"; examples/lib/seq-gate.mjs `applyBatch`).
   * Write-through still acknowledges a write only once the echo applied it. Unset: one request per
   * mutation.
   */
  batch: z
    .strictObject({
      /** Path on the instance that takes a batch (POST). */
      path: z.string().startsWith('/'),
      /** Mutations in one batch at most. @default 64 */
      max: z.number().int().min(1).max(4096).default(64),
      /**
       * Batches in flight to one echo at once; what becomes ready meanwhile waits for the next. One keeps
       * batches largest (the echo commits one at a time anyway); raise it for an echo far away (a
       * long round trip). @default 1
       */
      inflight: z.number().int().min(1).max(64).default(1),
      /**
       * Async consistency only: how long a batch that is not full may wait for more mutations before it
       * leaves (Kafka's `linger.ms`). Fewer, larger batches cost the router and the echo less CPU per
       * write; the echo lags by up to this much more, and a failover or switchover sends what waits at
       * once. Write-through batches leave at once (a client waits for them). @default 20ms
       */
      linger: duration.default(20),
    })
    .optional(),
});

export const echoSchema = z.strictObject({
  /** Echoes per primary. @default 1 */
  count: z.number().int().min(0).max(16).default(1),
  /**
   * `hot`: runs and receives every mutation; `warm`: runs, files synced, reloads on promotion;
   * `cold`: not running, files synced, started on promotion; `external`: runs, kept in sync by the
   * service's own replication through the `external` hooks (no file sync). @default warm
   */
  mode: z.enum(['hot', 'warm', 'cold', 'external']).default('warm'),
  /** External mode: the hooks that make the echo follow, report its lag, promote and rejoin (docs/recipes.md). */
  external: externalEchoSchema.optional(),
  /** Hot mode: acknowledge after primary and echo applied (`write-through`) or replicate behind (`async`). @default write-through */
  consistency: z.enum(['write-through', 'async']).default('write-through'),
  /** Hot mode: which requests are mutations, mirrored to echoes in the primary's order. */
  mutations: mutationsSchema.prefault({}),
  /**
   * Warm mode: how a promoted echo is told to reload its state: an HTTP POST to `path` on its first port,
   * or a signal. @default none (the service reads its state directory on every request or watches it)
   */
  promote: z
    .strictObject({
      http: z.string().startsWith('/').optional(),
      signal: z.enum(['SIGHUP', 'SIGUSR1', 'SIGUSR2']).optional(),
    })
    .refine((p) => !(p.http && p.signal), { message: 'choose one of http or signal' })
    .optional(),
  /** File-state synchronisation. */
  sync: syncSchema.prefault({}),
  /**
   * Cache warming by mirrored reads: this fraction (0–1) of live reads (GET, HEAD) is copied to every
   * running echo (HTTP routing only), responses discarded, marked `x-understudy-mirror: warm`, so an
   * echo's caches hold what live traffic reads when it is promoted. The cost (copies sent) is in the
   * router's stats (`warmReads`). `0`: off. @default 0
   */
  warmReads: z.number().min(0).max(1).default(0),
});

export const failoverSchema = z.strictObject({
  /** Promote an echo automatically when the primary fails. @default true */
  auto: z.boolean().default(true),
  /** Interval of the liveness heartbeat to each instance. @default 100ms */
  heartbeat: duration.default(100),
  /** Suspicion (phi) above which a silent, live process counts as hung. @default 8 */
  phiThreshold: z.number().positive().default(8),
  /**
   * Silence tolerated on top of the usual heartbeat interval before suspicion grows (GC pauses, a slow
   * fsync). A stopped process (SIGSTOP) is recognised from its process state without waiting for this. @default 1s
   */
  acceptablePause: duration.default(1000),
  /** `auto`: switch back to the old primary once it has rejoined and caught up; `manual`: stay. @default manual */
  failback: z.enum(['auto', 'manual']).default('manual'),
});

export const resourcesSchema = z.strictObject({
  /** CPU limit in cores for a serving instance; unset means unlimited. */
  cpu: z.number().positive().optional(),
  /** Memory limit for a serving instance; unset means unlimited. */
  memory: bytes.optional(),
  /** Fraction of the serving limits an idle echo starts with (seed 000: echoes start minimal). @default 0.25 */
  echoFraction: z.number().positive().max(1).default(0.25),
});

export const routingSchema = z.strictObject({
  /** Public address the router listens on for this service; unset: no router. */
  listen: listenAddress.optional(),
  /** Named instance port traffic is forwarded to. @default the first port */
  port: portName.optional(),
  /** `http` (reverse proxy) or `tcp` (plain stream). @default http */
  protocol: z.enum(['http', 'tcp']).default('http'),
  /**
   * Gradual traffic shift (Envoy's slow start, HAProxy's `slowstart`): an instance that joins a serving
   * set of several — a scale-out (promoted warm echo or cold start), a member back from being unready —
   * ramps from a tenth of its share to all of it over this window. Never applied to a failover or a
   * switchover to a single primary: a dead primary's traffic moves at once. `0` turns ramps off.
   * @default 10s
   */
  slowStart: duration.default(10_000),
  /**
   * An external HAProxy to keep pointed at the current primary through its Runtime API (no reload):
   * `socket` is a unix socket path or `host:port` with `level admin`; `server` of `backend` is re-pointed
   * at the primary's address on every promotion.
   */
  haproxy: z
    .strictObject({ socket: z.string().min(1), backend: z.string().min(1), server: z.string().min(1) })
    .optional(),
});

export const scalingSchema = z
  .strictObject({
    /** Fewest serving instances. @default 1 */
    min: z.number().int().min(1).default(1),
    /** Most serving instances; above `min`, the service scales horizontally. @default 1 */
    max: z.number().int().min(1).max(64).default(1),
    /** Target utilisation of a serving instance (0–1): capacity is provisioned for load at this level. @default 0.6 */
    target: z.number().gt(0).max(1).default(0.6),
    /**
     * `predictive`: forecast the load and provision for the forecast's upper bound at the lead time,
     * never below what the reactive rule asks; `reactive`: the reactive rule only (as the Kubernetes HPA);
     * `forecast-only`: decide and record predictively, but act reactively (a dry run). @default predictive
     */
    policy: z.enum(['predictive', 'reactive', 'forecast-only']).default('predictive'),
    /**
     * Requests per second one serving instance handles at 100 % utilisation. Unset: measured from the
     * router's request rate and the serving instances' CPU use before the first scaling decision.
     */
    capacity: z.number().positive().optional(),
    /** Step of the load series the forecaster sees (the router's requests/s averaged per step). @default 1m */
    step: duration.default(60_000),
    /** Time between two scaling decisions. @default 15s */
    interval: duration.default(15_000),
    /** Provisioning lead time of a cold start (process start to ready): the forecast horizon without a ready echo. @default 30s */
    coldStart: duration.default(30_000),
    /** A scale-in happens only after the reactive recommendation stayed lower for this long. @default 5m */
    stabilization: duration.default(300_000),
  })
  .refine((s) => s.min <= s.max, { message: 'min must not exceed max', path: ['min'] });

export const shadowSchema = z.strictObject({
  /** Shadows of the service: instances that receive a mirrored copy of live traffic, output discarded. @default 0 */
  count: z.number().int().min(0).max(4).default(0),
  /** Fraction of a serving instance's CPU limit a shadow gets (seed 002: e.g. 25 %). @default 0.25 */
  cpuFraction: z.number().gt(0).max(1).default(0.25),
  /** Fraction of a serving instance's memory limit a shadow gets (seed 002: e.g. 10 %). @default 0.1 */
  memoryFraction: z.number().gt(0).max(1).default(0.1),
  /** Fraction of requests mirrored to each shadow (0–1). @default 1 */
  sample: z.number().min(0).max(1).default(1),
  /**
   * Seed 004: create a shadow when a spike is forecast (forecast upper bound above the serving capacity)
   * and retire it once the spike has passed, even with `count: 0`. @default false
   */
  onForecast: z.boolean().default(false),
  /** Early-warning threshold on the shadow–live utilisation delta, normalised by the shadow's CPU fraction. @default 0.25 */
  deltaThreshold: z.number().positive().default(0.25),
});

export const migrationSchema = z
  .strictObject({
    /**
     * Seeds 003/004: move the primary to a synced echo by a planned switchover when its migration
     * readiness score (CPU 30, memory 25, disk latency 20, failure history 15, predicted failure 10)
     * stays high, then recreate the old one as a fresh echo. @default false
     */
    auto: z.boolean().default(false),
    /** Readiness (0–100) from which an echo is readied as the target. @default 60 */
    provisionThreshold: z.number().min(0).max(100).default(60),
    /** Readiness (0–100) at which traffic switches to the synced echo. @default 80 */
    switchThreshold: z.number().min(0).max(100).default(80),
    /** Time between two readiness samples. @default 5s */
    interval: duration.default(5000),
  })
  .refine((m) => m.provisionThreshold <= m.switchThreshold, {
    message: 'provisionThreshold must not exceed switchThreshold',
    path: ['provisionThreshold'],
  });

export const restartSchema = z.strictObject({
  /** When to restart an exited instance. @default on-failure */
  policy: z.enum(['always', 'on-failure', 'never']).default('on-failure'),
  /** Restarts allowed within `window` before giving up. @default 5 */
  maxRestarts: z.number().int().min(0).default(5),
  /** @default 60s */
  window: duration.default(60_000),
  /** First restart delay; doubles per restart up to `maxBackoff`. @default 100ms */
  backoff: duration.default(100),
  /** @default 5s */
  maxBackoff: duration.default(5000),
});

/**
 * Runtime-state transfer (seed 001's State Transfer Module, at the application level): before a warm
 * echo joins the serving set in a scale-out, its runtime state (caches, warmed data) is streamed from a
 * running serving instance: `GET export` on it, piped into `POST import` on the echo. Both endpoints must
 * check `authorization: Bearer $UNDERSTUDY_STATE_TOKEN` (each instance gets its own token in its
 * environment). A failed transfer is a decision with its reason; the echo then serves without the state.
 */
export const stateTransferSchema = z.strictObject({
  /** Path of the export endpoint (`GET`, streams the state) on the running instance's routed port. */
  export: z.string().startsWith('/'),
  /** Path of the import endpoint (`POST`, takes that stream as its body) on the new instance. */
  import: z.string().startsWith('/'),
  /** The whole transfer must finish within this. @default 10s */
  timeout: duration.default(10_000),
  /** A larger state is cut off (the import sees its body end early). @default 256Mi */
  maxBytes: bytes.default(256 * 1024 * 1024),
  /**
   * After the import and before it serves, the instance answers copies of this many live reads (GET,
   * HEAD; every read is copied to it, answers discarded, `x-understudy-mirror: warm`): its caches are
   * full, but a process that has never served runs its request path unoptimised (V8 has not compiled
   * it yet) and is slower for its first thousands of requests. `0`: off. HTTP routing only.
   * @default 2000
   */
  warmUpReads: z.number().int().min(0).default(2000),
  /** The warm-up ends after this even with fewer reads (little live traffic); promotion waits at most this. @default 2s */
  warmUpTimeout: duration.default(2000),
});

export const serviceSchema = z
  .strictObject({
    /** Service name: lowercase letters, digits and dashes. */
    name: z
      .string()
      .regex(
        /^[a-z][a-z0-9-]{0,62}$/,
        'expected lowercase letters, digits and dashes, starting with a letter',
      ),
    /**
     * argv of one instance. Placeholders: `{port}` (first port), `{port.NAME}`, `{stateDir}`, `{instance}`,
     * `{service}`, `{role}`, `{specDir}`.
     */
    command: z.array(z.string()).min(1, 'expected at least the program to run'),
    /** Working directory, relative to the spec file. @default the spec file's directory */
    cwd: z.string().optional(),
    /** Extra environment; values may use placeholders. */
    env: z.record(z.string(), z.string()).default({}),
    /** Per-instance state directory; relative to the data directory. @default state/{instance} */
    stateDir: z.string().default('state/{instance}'),
    /** Named ports; 0 allocates a free port per instance. @default { http: 0 } */
    ports: z.record(portName, portNumber).default({ http: 0 }),
    /** Health check. @default none (process liveness only) */
    health: healthSchema.optional(),
    echo: echoSchema.prefault({}),
    resources: resourcesSchema.prefault({}),
    routing: routingSchema.prefault({}),
    stateTransfer: stateTransferSchema.optional(),
    scaling: scalingSchema.prefault({}),
    shadow: shadowSchema.prefault({}),
    migration: migrationSchema.prefault({}),
    restart: restartSchema.prefault({}),
    failover: failoverSchema.prefault({}),
    /** Grace period between SIGTERM and SIGKILL on stop. @default 5s */
    stopGrace: duration.default(5000),
  })
  .superRefine((s, ctx) => {
    const names = Object.keys(s.ports);
    const known = new Set(names);
    const check = (port: string | undefined, path: (string | number)[]): void => {
      if (port !== undefined && !known.has(port)) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `unknown port name '${port}'; ports are: ${names.join(', ') || '(none)'}`,
        });
      }
    };
    check(s.health?.http?.port, ['health', 'http', 'port']);
    check(s.health?.tcp?.port, ['health', 'tcp', 'port']);
    check(s.routing.port, ['routing', 'port']);
    if (s.echo.mode === 'external' && !s.echo.external) {
      ctx.addIssue({
        code: 'custom',
        path: ['echo', 'external'],
        message:
          'echo.mode external needs echo.external with its hooks: at least follow (or prepare) and promote (docs/recipes.md)',
      });
    }
    if (s.echo.external && s.echo.mode !== 'external') {
      ctx.addIssue({
        code: 'custom',
        path: ['echo', 'external'],
        message: `echo.external is only used with echo.mode external (mode is ${s.echo.mode})`,
      });
    }
    if (s.echo.mode === 'external') {
      const hooks = s.echo.external ?? {};
      for (const name of ['prepare', 'follow', 'lag', 'promote', 'fence', 'rejoin'] as const) {
        const h = (hooks as Partial<Record<string, { http?: { port?: string } }>>)[name];
        check(h?.http?.port, ['echo', 'external', name, 'http', 'port']);
        if (h?.http && names.length === 0)
          ctx.addIssue({
            code: 'custom',
            path: ['echo', 'external', name, 'http'],
            message: 'an http hook needs at least one port',
          });
      }
      if (s.scaling.max > 1)
        ctx.addIssue({
          code: 'custom',
          path: ['scaling', 'max'],
          message:
            "horizontal scaling (max > 1) needs serving instances that share no state: an external echo follows one primary's replication, so use max: 1",
        });
    }
    if (s.echo.mutations.strict && s.echo.mode === 'hot' && s.echo.count === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['echo', 'mutations', 'strict'],
        message:
          'strict refuses every write no echo applied, and echo.count is 0: every write would be refused; set echo.count >= 1 or strict: false',
      });
    }
    if (s.echo.mutations.batch && s.echo.mutations.order !== 'pipelined') {
      ctx.addIssue({
        code: 'custom',
        path: ['echo', 'mutations', 'batch'],
        message:
          'batch needs order: pipelined (an instance applies a batch in x-understudy-seq order and deduplicates a resent one by seq); set order: pipelined or drop batch',
      });
    }
    if (s.echo.mutations.order === 'pipelined' && s.echo.mutations.partitionBy) {
      ctx.addIssue({
        code: 'custom',
        path: ['echo', 'mutations', 'partitionBy'],
        message:
          'partitionBy orders serial mutations per key; with order: pipelined every mutation has its place in one sequence already, so drop partitionBy or use order: serial',
      });
    }
    if (s.scaling.max > 1 && s.echo.mode === 'hot') {
      ctx.addIssue({
        code: 'custom',
        path: ['scaling', 'max'],
        message:
          "horizontal scaling (max > 1) needs serving instances that share no local state: hot echoes replay one primary's mutations, so use echo.mode warm or cold, or max: 1",
      });
    }
    if ((s.scaling.max > 1 || s.shadow.count > 0 || s.shadow.onForecast) && names.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['ports'],
        message: 'a serving set and shadows are reached through the router, which needs at least one port',
      });
    }
    if ((s.health?.http || s.health?.tcp || s.routing.listen) && names.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['ports'],
        message: 'health checks and routing need at least one port',
      });
    }
  });

export const apiSchema = z.strictObject({
  /** Address of the HTTP API. Port 0 picks a free one (written to the data directory). @default 127.0.0.1:0 */
  listen: listenAddress.default('127.0.0.1:0'),
  /**
   * Serve `GET /metrics` (Prometheus) without the bearer token. Off, Prometheus authenticates with
   * `bearer_token_file` pointing at the data directory's `token`. @default false
   */
  metricsPublic: z.boolean().default(false),
});

export const dnsSchema = z.strictObject({
  /** UDP and TCP address of the authoritative answer for `<service>.<zone>.`. */
  listen: listenAddress,
  /** @default understudy */
  zone: z
    .string()
    .regex(/^[a-z0-9-]+(\.[a-z0-9-]+)*$/, 'expected a DNS zone such as understudy')
    .default('understudy'),
});

export const fileSchema = z.strictObject({
  /** Spec format version. @default 1 */
  version: z.literal(1).default(1),
  /** Data directory (store, logs, state), relative to the spec file. @default the CLI's --data-dir */
  dataDir: z.string().optional(),
  api: apiSchema.prefault({}),
  /** Answer DNS queries for `<service>.understudy.` with the current primary's address (TTL 1 s). @default off */
  dns: dnsSchema.optional(),
  services: z.array(serviceSchema).min(1, 'expected at least one service'),
});

/** One service, defaults applied. */
export type ServiceSpec = z.output<typeof serviceSchema>;
/** A whole `understudy.yaml`, defaults applied. */
export type SpecFile = z.output<typeof fileSchema>;
export type HealthSpec = z.output<typeof healthSchema>;
export type EchoSpec = z.output<typeof echoSchema>;
export type SyncSpec = z.output<typeof syncSchema>;
export type ResourcesSpec = z.output<typeof resourcesSchema>;
export type RoutingSpec = z.output<typeof routingSchema>;
export type ScalingSpec = z.output<typeof scalingSchema>;
export type ShadowSpec = z.output<typeof shadowSchema>;
export type MigrationSpec = z.output<typeof migrationSchema>;
export type RestartSpec = z.output<typeof restartSchema>;
export type FailoverSpec = z.output<typeof failoverSchema>;
export type MutationsSpec = z.output<typeof mutationsSchema>;
