/** The kinds of action a policy can decide. */
export type DecisionKind =
  | 'scale-out'
  | 'scale-in'
  | 'promote-echo'
  | 'pool-resize'
  | 'resize'
  | 'migrate-provision'
  | 'migrate-switchover'
  | 'migrate-retire'
  | 'migrate-cancel';

/** A forecast summarised for a decision: the point and interval at the horizon the decision rests on. */
export interface DecisionForecast {
  /** Horizon in ms after `at` that the forecast covers. */
  horizonMs: number;
  mean: number;
  lower: number;
  upper: number;
}

/** What a decision was based on (recorded with it, shown by `understudy events`). */
export interface DecisionInputs {
  /** Load observed when deciding (requests/s or the metric's unit). */
  load?: number;
  /** The forecast the decision rests on, when one was used. */
  forecast?: DecisionForecast;
  /** Prediction confidence in [0, 1]. */
  confidence?: number;
  /** Migration readiness score in [0, 100]. */
  readiness?: number;
  /** Count the reactive rule asked for. */
  reactive?: number;
  /** Count the predictive rule asked for (before combining with the reactive one). */
  predictive?: number;
  /** Any further numbers worth keeping (utilisation, limits…). */
  [key: string]: number | DecisionForecast | undefined;
}

/** An explained action chosen by a policy. Pure data. */
export interface Decision {
  kind: DecisionKind;
  /** Decision time (ms, from the caller's clock). */
  at: number;
  /** Quantity before the action (instances, pool size, CPU millicores…). */
  from: number;
  /** Quantity the action asks for. */
  to: number;
  /**
   * Whether the caller should act: false in `forecast-only` mode, or when a guard (cooldown, max
   * actions per window) held the action back — then `reason` says which.
   */
  applied: boolean;
  /** One line on why. */
  reason: string;
  inputs: DecisionInputs;
  /** Instance the decision is about (vertical and migration decisions). */
  instance?: string;
  /** Target host (migration decisions). */
  host?: string;
}
