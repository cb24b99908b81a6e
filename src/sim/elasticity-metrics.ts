/**
 * SPEC RG elasticity metrics (Herbst et al., "Quantifying Cloud Performance and Dependability",
 * ACM TOMPECS 2018) plus the operational numbers the scaling benchmark reports. Demand and supply
 * are in instances: demand = max(1, ⌈load / capacity per instance⌉), supply = ready serving
 * instances. Percentages are of the simulated time.
 */
export interface ElasticityMetrics {
  /** Under-provisioning accuracy θU: time-average of max(d − s, 0) / d, in %. */
  thetaU: number;
  /** Over-provisioning accuracy θO: time-average of max(s − d, 0) / d, in %. */
  thetaO: number;
  /** Under-provisioning timeshare τU: % of time with s < d. */
  tauU: number;
  /** Over-provisioning timeshare τO: % of time with s > d. */
  tauO: number;
  /** Instability k: % of time in which supply and demand do not move in the same direction. */
  instability: number;
  /** Serving-set changes decided (each counts once, whatever its size). */
  actions: number;
  /** Minutes with demand above the supplied capacity (load > ready × capacity). */
  sloViolationMin: number;
  /** Cost: instance-hours of serving and starting instances, plus echoes at their size fraction. */
  instanceHours: number;
  /** Requests dropped by full queues, in % of those that arrived. */
  droppedPct: number;
  /** Mean queueing delay of served requests (ms). */
  meanQueueDelayMs: number;
  /** Simulated time (hours). */
  hours: number;
}

/** Accumulates {@link ElasticityMetrics} tick by tick. O(1) per tick. */
export class ElasticityAccumulator {
  #t = 0;
  #under = 0;
  #over = 0;
  #tauU = 0;
  #tauO = 0;
  #unstable = 0;
  #unstableT = 0;
  #prevD = Number.NaN;
  #prevS = Number.NaN;
  #violationMs = 0;
  #costMs = 0;
  #arrived = 0;
  #dropped = 0;
  #served = 0;
  #delayWeighted = 0;
  actions = 0;

  /**
   * Adds one interval of `dtMs`: `demand` and `supply` in instances (demand ≥ 1), `cost` in
   * instance equivalents, request counts of the interval and the queueing delay of its served requests.
   */
  add(
    dtMs: number,
    demand: number,
    supply: number,
    cost: number,
    arrived = 0,
    served = 0,
    dropped = 0,
    delayMs = 0,
  ): void {
    const d = Math.max(demand, 1e-9);
    this.#t += dtMs;
    if (supply < demand) {
      this.#under += ((demand - supply) / d) * dtMs;
      this.#tauU += dtMs;
      this.#violationMs += dtMs;
    } else if (supply > demand) {
      this.#over += ((supply - demand) / d) * dtMs;
      this.#tauO += dtMs;
    }
    if (!Number.isNaN(this.#prevD)) {
      if (Math.sign(supply - this.#prevS) !== Math.sign(demand - this.#prevD)) this.#unstable += dtMs;
      this.#unstableT += dtMs;
    }
    this.#prevD = demand;
    this.#prevS = supply;
    this.#costMs += cost * dtMs;
    this.#arrived += arrived;
    this.#served += served;
    this.#dropped += dropped;
    this.#delayWeighted += delayMs * served;
  }

  /** The metrics so far. */
  result(): ElasticityMetrics {
    const T = this.#t || 1;
    return {
      thetaU: (100 * this.#under) / T,
      thetaO: (100 * this.#over) / T,
      tauU: (100 * this.#tauU) / T,
      tauO: (100 * this.#tauO) / T,
      instability: this.#unstableT > 0 ? (100 * this.#unstable) / this.#unstableT : 0,
      actions: this.actions,
      sloViolationMin: this.#violationMs / 60_000,
      instanceHours: this.#costMs / 3_600_000,
      droppedPct: this.#arrived > 0 ? (100 * this.#dropped) / this.#arrived : 0,
      meanQueueDelayMs: this.#served > 0 ? this.#delayWeighted / this.#served : 0,
      hours: this.#t / 3_600_000,
    };
  }
}

/** Sums the metrics of several services (or traces): time-weighted percentages, summed counts. */
export function combineMetrics(parts: readonly ElasticityMetrics[]): ElasticityMetrics {
  const out: ElasticityMetrics = {
    thetaU: 0,
    thetaO: 0,
    tauU: 0,
    tauO: 0,
    instability: 0,
    actions: 0,
    sloViolationMin: 0,
    instanceHours: 0,
    droppedPct: 0,
    meanQueueDelayMs: 0,
    hours: 0,
  };
  let h = 0;
  for (const m of parts) {
    out.thetaU += m.thetaU * m.hours;
    out.thetaO += m.thetaO * m.hours;
    out.tauU += m.tauU * m.hours;
    out.tauO += m.tauO * m.hours;
    out.instability += m.instability * m.hours;
    out.droppedPct += m.droppedPct * m.hours;
    out.meanQueueDelayMs += m.meanQueueDelayMs * m.hours;
    out.actions += m.actions;
    out.sloViolationMin += m.sloViolationMin;
    out.instanceHours += m.instanceHours;
    h += m.hours;
  }
  if (h > 0)
    for (const k of [
      'thetaU',
      'thetaO',
      'tauU',
      'tauO',
      'instability',
      'droppedPct',
      'meanQueueDelayMs',
    ] as const)
      out[k] /= h;
  out.hours = h;
  return out;
}
