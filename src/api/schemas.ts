import { z } from 'zod';

/** Query of `GET /v1/events`. */
export const eventsQuery = z.strictObject({
  /** Only decisions with a sequence number above this. @default 0 */
  after: z.coerce.number().int().min(0).default(0),
  /** At most this many, newest. @default 200 */
  limit: z.coerce.number().int().min(1).max(10_000).default(200),
  /** Only this service's decisions. */
  service: z.string().min(1).optional(),
});

/** Body of `POST /v1/instances/:id/restart`. */
export const restartBody = z.strictObject({
  /** Why, recorded in the decision. */
  reason: z.string().min(1).max(500).default('requested through the API'),
  /** Restart a primary that serves alone (its clients see the downtime). @default false */
  force: z.boolean().default(false),
});

/** Body of `POST /v1/shutdown`. */
export const shutdownBody = z.strictObject({
  reason: z.string().min(1).max(500).default('requested through the API'),
});

/** The error shape of every API error, the same as config errors: what and where. */
export interface ApiErrorBody {
  error: {
    code: string;
    message: string;
    problems?: { field: string; message: string }[];
    /** With UNDERSTUDY_ERR_NOT_LEADER (a standby control replica): the leader's API URL, when known. */
    leader?: string;
  };
}

/** Body of `POST /v1/services/:name/failover`. */
export const failoverBody = z.strictObject({
  reason: z.string().min(1).max(500).default('forced through the API'),
  /** The echo to promote; it must be a running, healthy echo of the service. @default the best echo */
  to: z.string().min(1).optional(),
});

/** Body of `POST /v1/services/:name/switchover`. */
export const switchoverBody = z.strictObject({
  /** Echo to switch to. @default the best echo */
  to: z.string().min(1).optional(),
});
