/** Options of {@link nelderMead}. */
export interface NelderMeadOptions {
  /** Initial simplex step per coordinate. @default 0.5 */
  step?: number;
  /** Stop after this many objective evaluations. @default 200 */
  maxEvaluations?: number;
  /** Stop when the simplex's objective spread falls below this (relative). @default 1e-6 */
  tolerance?: number;
}

/** Result of a minimisation. */
export interface NelderMeadResult {
  x: number[];
  value: number;
  evaluations: number;
}

/**
 * Minimises `f` from `x0` with the Nelder–Mead simplex method (reflection 1, expansion 2,
 * contraction ½, shrink ½). Deterministic. Non-finite objective values count as +Infinity.
 */
export function nelderMead(
  f: (x: readonly number[]) => number,
  x0: readonly number[],
  options: NelderMeadOptions = {},
): NelderMeadResult {
  const step = options.step ?? 0.5;
  const maxEval = options.maxEvaluations ?? 200;
  const tol = options.tolerance ?? 1e-6;
  const n = x0.length;
  let evals = 0;
  const F = (x: readonly number[]): number => {
    evals++;
    const v = f(x);
    return Number.isFinite(v) ? v : Number.POSITIVE_INFINITY;
  };
  const pts: number[][] = [x0.slice()];
  for (let i = 0; i < n; i++) {
    const p = x0.slice();
    p[i] = p[i]! + step;
    pts.push(p);
  }
  const vals = pts.map(F);
  while (evals < maxEval) {
    const order = pts.map((_, i) => i).sort((a, b) => vals[a]! - vals[b]!);
    const sp = order.map((i) => pts[i]!);
    const sv = order.map((i) => vals[i]!);
    for (let i = 0; i <= n; i++) {
      pts[i] = sp[i]!;
      vals[i] = sv[i]!;
    }
    const best = vals[0]!;
    const worst = vals[n]!;
    if (Math.abs(worst - best) <= tol * (Math.abs(best) + 1e-12)) break;
    const centroid = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) centroid[j] = centroid[j]! + pts[i]![j]! / n;
    const along = (t: number): number[] => centroid.map((c, j) => c + t * (pts[n]![j]! - c));
    const xr = along(-1);
    const fr = F(xr);
    if (fr < vals[0]!) {
      const xe = along(-2);
      const fe = F(xe);
      if (fe < fr) {
        pts[n] = xe;
        vals[n] = fe;
      } else {
        pts[n] = xr;
        vals[n] = fr;
      }
    } else if (fr < vals[n - 1]!) {
      pts[n] = xr;
      vals[n] = fr;
    } else {
      const outside = fr < vals[n]!;
      const xc = along(outside ? -0.5 : 0.5);
      const fc = F(xc);
      if (fc < (outside ? fr : vals[n]!)) {
        pts[n] = xc;
        vals[n] = fc;
      } else {
        for (let i = 1; i <= n; i++) {
          pts[i] = pts[i]!.map((v, j) => pts[0]![j]! + 0.5 * (v - pts[0]![j]!));
          vals[i] = F(pts[i]!);
        }
      }
    }
  }
  let bi = 0;
  for (let i = 1; i <= n; i++) if (vals[i]! < vals[bi]!) bi = i;
  return { x: pts[bi]!, value: vals[bi]!, evaluations: evals };
}
