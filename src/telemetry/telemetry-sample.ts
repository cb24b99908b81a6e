// The plain data the metrics are read from on every scrape. The control plane fills it from the stats
// its parts already keep (router, replication, file sync, autoscaler, instance records); telemetry knows
// nothing of those modules. Every time is in seconds and every size in bytes here, as Prometheus wants.

/** Everything the metrics show at one moment: one entry per service, and the control loop's health. */
export interface TelemetrySample {
  services: readonly ServiceSample[];
  /** Event-loop delay of the control process, seconds. */
  eventLoopDelay?: { p50: number; p99: number; max: number };
}

/** One service: its epoch, instances and the samplers of its data plane and scaling. */
export interface ServiceSample {
  service: string;
  epoch: number;
  /** True from a failover until a replacement echo serves as understudy again. */
  degraded: boolean;
  /** True while the service is paused (maintenance mode). @default false */
  paused?: boolean;
  /** Instances wanted per role. */
  desired: { primary: number; echo: number; shadow: number };
  /** Instances serving traffic (the router's serving set, or the running primaries without one). */
  serving: number;
  /** Echoes standing by (running, starting, or cold in standby): the warm pool of a scaled service. */
  warmPool: number;
  instances: readonly InstanceSample[];
  /** Serving instances the router sends traffic to (absent without a router). */
  router?: RouterSample;
  /** Hot echoes: the mutation log's replay to every echo. */
  replication?: ReplicationSample;
  /** Warm and cold echoes: file-state sync, one entry per echo. */
  fileSync?: readonly FileSyncSample[];
  /** External echoes: the replication lag each echo's `lag` hook last reported (absent: unknown). */
  externalEchoes?: readonly { instance: string; lagBytes?: number }[];
  /** Predictive scaling (absent when the service neither scales nor forecasts). */
  scaling?: ScalingSample;
}

/** One instance of a service as the control plane records it. */
export interface InstanceSample {
  instance: string;
  role: string;
  phase: string;
  /** Epoch of the service when this instance last became primary. */
  epoch: number;
  /** Last health verdict; undefined when no check has answered yet (or none is configured). */
  healthy?: boolean;
  /** Migration readiness score (0..100) of a primary the migration watch samples. */
  readiness?: number;
}

/** A fixed-bucket latency histogram: upper bounds in seconds, counts per bucket plus one overflow. */
export interface LatencySample {
  bounds: readonly number[];
  /** Counts per bucket (not cumulative), `bounds.length + 1` entries: the last is above every bound. */
  counts: readonly number[];
  sum: number;
  count: number;
}

/** The router of one service. */
export interface RouterSample {
  mode: 'http' | 'tcp';
  /** Requests (or connections) waiting for a backend right now. */
  waiting: number;
  /** HTTP requests (TCP: connections) accepted. */
  requests: number;
  /** Requests (connections) in flight now. */
  inFlight: number;
  /** Requests (connections) the router answered 503 (closed) for want of a backend. */
  unavailable: number;
  /** Requests re-sent to another backend (retries and re-dispatches). */
  retried: number;
  /** Failed requests by kind (HTTP), or `connect`/`reset` (TCP). */
  errors: Readonly<Record<string, number>>;
  /** TCP mode: bytes from clients and to clients. */
  bytes?: { in: number; out: number };
  /** Mirroring to shadows: copies sent, dropped, failed, not sent for their body size. */
  mirror: { sent: number; dropped: number; failed: number; skipped: number };
  /** Cache-warming copies of reads to echoes (`echo.warmReads`): sent, completed, dropped, failed. */
  warmReads?: { sent: number; completed: number; dropped: number; failed: number };
  backends: readonly BackendSample[];
}

/** One backend (instance) of a router. */
export interface BackendSample {
  instance: string;
  requests: number;
  errors: number;
  inFlight: number;
  latency: LatencySample;
}

/** The mutation log of a hot service and its replay on each echo. */
export interface ReplicationSample {
  /** Sequence number of the last logged mutation. */
  lastSeq: number;
  /** Writes not acknowledged because no echo applied them (write-through, strict). */
  strictRefusals: number;
  echoes: readonly EchoReplicationSample[];
}

/** Replay of the mutation log on one echo. */
export interface EchoReplicationSample {
  instance: string;
  inSync: boolean;
  /** Mutations queued but not yet applied. */
  lagMutations: number;
  /** Age of the oldest unapplied mutation, seconds. */
  lagSeconds: number;
  applied: number;
  failures: number;
}

/** File-state sync of one warm or cold echo, from the primary's side. */
export interface FileSyncSample {
  instance: string;
  connected: boolean;
  lagSeconds: number;
  lagBytes: number;
  /** Bytes written to the wire to this echo. */
  wireBytes: number;
  /** Changed bytes per second on the primary. */
  changeRateBytes: number;
  compressionRatio: number;
  errors: number;
}

/** Predictive scaling of one service. */
export interface ScalingSample {
  /** Requests/s through the router, last sample. */
  load: number;
  /** Requests/s one serving instance handles at 100 %, once known. */
  capacity?: number;
  /** Target utilisation of a serving instance, 0..1. */
  target: number;
  /** The forecast the last step rested on: point and interval, requests/s, at `horizonSeconds`. */
  forecast?: { mean: number; lower: number; upper: number; horizonSeconds: number };
  /** Prediction confidence, 0..1. */
  confidence?: number;
  /** Shadow signal: (shadow − live) / live of the normalised CPU load. */
  shadowDelta?: number;
}

/** One promotion (failover or switchover), observed where it happens. */
export interface PromotionObservation {
  service: string;
  kind: 'failover' | 'switchover';
  /** What triggered it: `crash`, `hang`, `unhealthy` or `forced`. */
  cause: string;
  outcome: 'ok' | 'failed';
  /** Failure to detection, seconds, when the failure time is known (a process exit). */
  detectionSeconds?: number;
  /** Detection (or request) to the new primary serving, seconds (successful promotions). */
  promotionSeconds?: number;
}

/** What the failover logic reports promotions to: {@link Telemetry} or a test's recorder. */
export interface PromotionObserver {
  promotion(observation: PromotionObservation): void;
}

/** One new decision of the control loop (its kind, and whether it was a scaling action carried out). */
export interface DecisionObservation {
  service: string;
  kind: string;
  /** Set for scaling actions (scale-out, scale-in, pool-resize, resize): whether it was applied. */
  scalingApplied?: boolean;
}
