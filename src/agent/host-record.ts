import { z } from 'zod';

/** Store key prefix of the host records agents keep under a lease (`hosts/<name>`). */
export const HOSTS_PREFIX = 'hosts/';

/** The store key of a host's record. */
export function hostKey(host: string): string {
  return `${HOSTS_PREFIX}${host}`;
}

/** What a host name may be: letters, digits, `.`, `_` and `-`, starting with a letter or digit. */
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const HostRecordSchema = z.object({
  host: z.string().regex(HOST_NAME),
  /** Base URL of the agent API. */
  url: z.url({ protocol: /^https?$/ }),
  /** The address the host's instances are reached at. */
  address: z.string().min(1),
  /**
   * The agent's TLS port (of `url`) also takes routers' connections to the host's instances (its TLS
   * ingress, src/agent/tls-ingress.ts). Absent: none; routers reach the instances in plain TCP.
   */
  ingress: z.boolean().optional(),
  zone: z.string().optional(),
  runtime: z.string().min(1),
  cores: z.number().int().nonnegative(),
  memoryBytes: z.number().nonnegative(),
  pid: z.number().int().positive(),
  /** ms since the epoch. */
  startedAt: z.number(),
  /**
   * A planned restart (`understudy agent --leave-running` stopping): the agent comes back by this time
   * (ms since the epoch, the agent's clock) and adopts the instances, which run on meanwhile. The record
   * is then kept under a lease of the restart grace, so it lapses (and the host is lost) if the agent
   * is not back in time. Absent while the agent runs.
   */
  restartingUntil: z.number().int().positive().optional(),
  /**
   * The agent's self-fencing bound, ms (`HostLease`): cut off — no lease renewal for this long and no
   * other host answering — it fences its primaries. Control waits this long (from the host's last
   * answered heartbeat, plus a margin) before it lets an echo elsewhere take over from a host it only
   * suspects. 0: self-fencing off (control then waits for the lease to lapse). Absent: an older agent
   * (control fails over on suspicion, as it did).
   */
  fenceAfterMs: z.number().int().nonnegative().optional(),
});

/**
 * The record an agent keeps at `hosts/<name>` while it runs, attached to a lease it renews: control
 * finds agents (and their API) here, and a host whose lease lapsed is gone.
 */
export type HostRecord = z.infer<typeof HostRecordSchema>;

/**
 * The end of a host's planned restart window (ms since the epoch) when its record says it is
 * restarting and the window has not passed at `now`; undefined otherwise.
 */
export function restartWindow(record: HostRecord | undefined, now: number): number | undefined {
  const until = record?.restartingUntil;
  return until !== undefined && until > now ? until : undefined;
}

/** Parses a host record's JSON; undefined when it is not one. */
export function parseHostRecord(value: string): HostRecord | undefined {
  try {
    const r = HostRecordSchema.safeParse(JSON.parse(value));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
