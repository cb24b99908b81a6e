import { constants } from 'node:os';
import { z } from 'zod';
import type { FailureVerdict, HealthVerdict } from '../health/index.js';
import type { InstanceExit, InstanceHandle } from '../runtime/index.js';
import type { EchoFileSyncView } from './service-file-sync.js';

/**
 * The wire format of the agent API (src/agent/agent-server.ts, src/agent/remote-agent.ts): one
 * `POST /v1/<method>` per operation of the `Agent` interface with a JSON body validated here, and one
 * long-lived `GET /v1/events` stream (NDJSON) for what the agent pushes.
 */

const id = z.string().min(1).max(200);
const path = z.string().min(1).max(4096);
const port = z.number().int().min(1).max(65_535);
const ms = z.number().int().min(0).max(86_400_000);
const signal = z
  .string()
  .refine((s) => /^SIG[A-Z0-9]+$/.test(s) && s in constants.signals, 'a signal name such as SIGTERM');
const limits = z.strictObject({
  cpu: z.number().positive().optional(),
  memoryBytes: z.number().int().positive().optional(),
});

/** A probe target (health/probes.ts). */
export const ProbeTargetSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('http'),
    host: z.string().min(1),
    port,
    path: z.string().startsWith('/'),
  }),
  z.strictObject({ kind: z.literal('tcp'), host: z.string().min(1), port }),
  z.strictObject({
    kind: z.literal('exec'),
    argv: z.array(z.string()).min(1),
    cwd: path,
    env: z.record(z.string(), z.string()),
  }),
]);

const handle = z.strictObject({
  instanceId: id,
  service: id,
  host: id,
  pid: z.number().int().positive(),
  pgid: z.number().int().positive(),
  startedAt: z.number(),
  stdoutPath: path,
  stderrPath: path,
  limits,
  startTimeTicks: z.number().int().nonnegative().optional(),
  stateDir: path.optional(),
  logMaxBytes: z.number().int().positive().optional(),
});

const syncSettings = z.strictObject({
  mode: z.enum(['continuous', 'relaxed']),
  intervalMs: ms,
  bytesThreshold: z.number().int().nonnegative(),
  bandwidthLimit: z.number().nonnegative(),
  priorities: z.array(z.strictObject({ name: z.string(), patterns: z.array(z.string()) })),
  exclude: z.array(z.string()),
});

/** The body of each `POST /v1/<method>`. */
export const AgentCallSchemas = {
  info: z.strictObject({}),
  start: z.strictObject({
    launch: z.strictObject({
      instanceId: id,
      service: id,
      host: id,
      command: z.array(z.string()).min(1),
      cwd: path,
      env: z.record(z.string(), z.string()),
      stateDir: path,
      logDir: path,
      logMaxBytes: z.number().int().positive(),
      resources: limits.optional(),
    }),
  }),
  stop: z.strictObject({ instanceId: id, graceMs: ms.optional() }),
  kill: z.strictObject({ instanceId: id, signal }),
  fence: z.strictObject({ instanceId: id }),
  adopt: z.strictObject({ handle }),
  instance: z.strictObject({ instanceId: id }),
  setResources: z.strictObject({ instanceId: id, limits }),
  limitsSupport: z.strictObject({}),
  stats: z.strictObject({ instanceId: id }),
  footprint: z.strictObject({ instanceId: id }),
  allocatePort: z.strictObject({}),
  probe: z.strictObject({ target: ProbeTargetSchema, timeoutMs: ms }),
  watch: z.strictObject({
    client: id,
    watchId: id,
    watch: z.strictObject({
      instanceId: id,
      health: z
        .strictObject({
          target: ProbeTargetSchema,
          intervalMs: ms,
          timeoutMs: ms,
          failureThreshold: z.number().int().positive(),
          startPeriodMs: ms,
        })
        .optional(),
      liveness: z
        .strictObject({
          pid: z.number().int().positive(),
          target: ProbeTargetSchema.optional(),
          intervalMs: ms,
          phiThreshold: z.number().positive(),
          acceptablePauseMs: ms,
        })
        .optional(),
    }),
  }),
  unwatch: z.strictObject({ watchId: id }),
  runHook: z.strictObject({
    instanceId: id,
    hook: z.strictObject({
      signal: signal.optional(),
      http: z.strictObject({ port, path: z.string().startsWith('/') }).optional(),
    }),
    timeoutMs: ms,
  }),
  runExternalHook: z.strictObject({
    request: z.strictObject({
      name: z.string().min(1).max(32),
      exec: z.strictObject({ argv: z.array(z.string()).min(1), cwd: path }).optional(),
      http: z.strictObject({ port, path: z.string().startsWith('/') }).optional(),
      env: z.record(z.string(), z.string()),
      timeoutMs: ms,
    }),
  }),
  snapshotState: z.strictObject({
    source: z.strictObject({ host: id, stateDir: path }).optional(),
    targetDir: path,
  }),
  prepareSyncTarget: z.strictObject({ stateDir: path }),
  removeState: z.strictObject({ stateDir: path }),
  compareState: z.strictObject({ aDir: path, bDir: path }),
  hostFacts: z.strictObject({}),
  syncCreate: z.strictObject({
    client: id,
    syncId: id,
    service: id,
    settings: syncSettings,
    /** The per-service sync key, base64 (32 bytes). */
    key: z.base64().refine((k) => Buffer.from(k, 'base64').length === 32, '32 bytes, base64'),
  }),
  syncSetPrimary: z.strictObject({ syncId: id, stateDir: path }),
  syncAddEcho: z.strictObject({ syncId: id, echoId: id, stateDir: path }),
  syncRemoveEcho: z.strictObject({ syncId: id, echoId: id }),
  /**
   * Cross-host: serve echo `echoId` of host `peerHost` from this host's primary, on a source of its
   * own on this host's address (the pair's key derived from the cluster secret, TLS when the agent has
   * it). Answers {@link SyncExposeReply}.
   */
  syncExposeEcho: z.strictObject({ syncId: id, echoId: id, peerHost: id }),
  /**
   * Cross-host: this host's echoes of the sync follow the primary of host `sourceHost`, reached at
   * `address:port` (the source it exposed to this host).
   */
  syncFollow: z.strictObject({
    syncId: id,
    sourceHost: id,
    address: z.string().min(1).max(255),
    port,
  }),
  syncWaitCaughtUp: z.strictObject({ syncId: id, echoId: id, timeoutMs: ms }),
  /** Reads the sync's state; `utilisation` is the primary's, as control last saw it (0..1). */
  syncView: z.strictObject({ syncId: id, utilisation: z.number().min(0).max(1).optional() }),
  syncClose: z.strictObject({ syncId: id }),
  close: z.strictObject({ graceMs: ms.optional(), leaveRunning: z.boolean().optional() }),
} as const;

/** A method of the agent API. */
export type AgentMethod = keyof typeof AgentCallSchemas;

/** The body of an agent API method. */
export type AgentCallBody<M extends AgentMethod> = z.infer<(typeof AgentCallSchemas)[M]>;

/** What `info` answers. */
export interface AgentInfo {
  host: string;
  address: string;
  runtimeName: string;
  /** Random per agent process: a new value means the agent restarted (event sequence numbers restart). */
  boot: string;
}

/** What `syncExposeEcho` answers: where the echo's host connects to. */
export interface SyncExposeReply {
  address: string;
  port: number;
}

/** What `syncView` answers. */
export interface SyncViewReply {
  echoes: EchoFileSyncView[];
  caughtUp: Record<string, boolean>;
}

/** One event of the `GET /v1/events` stream (one JSON object per line). */
export type AgentEvent =
  | { seq: number; type: 'exit'; handle: InstanceHandle; exit: InstanceExit }
  | { seq: number; type: 'health'; watchId: string; verdict: HealthVerdict }
  | { seq: number; type: 'hang'; watchId: string; verdict: FailureVerdict }
  | {
      seq: number;
      type: 'sync';
      syncId: string;
      echoId: string;
      kind: 'error' | 'security';
      message: string;
    };

/** A line of the event stream: an event, the stream's opening line, or a keep-alive. */
export type AgentStreamLine =
  | AgentEvent
  | {
      type: 'hello';
      boot: string;
      /** The sequence number of the latest event. */
      seq: number;
      /** True when events after the client's `after` were dropped from the buffer: re-read the instances. */
      gap: boolean;
    }
  | { type: 'ping' };
