// The shapes the dashboard reads from the API (a subset of src/control's ServiceView, HistorySample,
// ControlDecision and src/predict's AccuracyReport; kept here so the page bundles no server code).

export interface Instance {
  id: string;
  role: 'primary' | 'echo' | 'shadow';
  phase: string;
  epoch: number;
  pid?: number;
  health?: { healthy: boolean; detail: string };
}

export interface LastFailover {
  kind: 'failover' | 'switchover';
  at: number;
  from: string;
  to: string;
  epoch: number;
  cause: string;
  detectionMs?: number;
  promotionMs: number;
  restoredAt?: number;
}

export interface Service {
  name: string;
  epoch: number;
  echoMode: string;
  desired: { primaries: number; echoes: number; shadows: number };
  instances: Instance[];
  dataPlane?: { address: string; mode: string; serving: string[] };
  lastFailover?: LastFailover;
  scaling?: {
    policy: string;
    target: number;
    load: number;
    serving: number;
    pool: number;
    capacity?: { perInstance: number; source: string };
    forecast?: { horizonMs: number; mean: number; lower: number; upper: number };
    confidence?: number;
  };
  degraded: boolean;
}

export interface Sample {
  at: number;
  epoch: number;
  degraded: boolean;
  serving: number;
  warmPool: number;
  load?: number;
  capacity?: number;
  forecast?: { mean: number; lower: number; upper: number; horizonMs: number };
  shadow?: { live: number; shadow: number };
  replicationLagMs?: number;
  replicationLagMutations?: number;
  syncLagSeconds?: number;
  syncLagBytes?: number;
}

export interface Decision {
  seq: number;
  at: number;
  kind: string;
  service: string;
  instance?: string;
  what: string;
  why: string;
  inputs: Record<string, unknown>;
  outcome: { status: string; error?: string };
}

export interface AccuracySummary {
  windowMs: number;
  pairs: number;
  enough: boolean;
  mase?: number;
  coverage?: number;
  mae?: number;
  naiveMae?: number;
  note: string;
}

export type Forecast =
  | { service: string; forecasting: true; pending: number; hour: AccuracySummary; day: AccuracySummary }
  | { service: string; forecasting: false; note: string };
