import type { SimSeries } from './simulator.js';

/** One capacity line on the plot. */
export interface PlotRun {
  /** Legend label, e.g. `predictive`. */
  label: string;
  series: SimSeries;
}

/** Options of {@link renderPlotSvg}. */
export interface PlotOptions {
  title: string;
  /** Second line under the title (settings, headline metrics). */
  subtitle?: string;
  /** @default 1200 */
  width?: number;
  /** @default 520 */
  height?: number;
}

const COLORS = ['#1b9e77', '#7570b3', '#d95f02', '#e7298a'];

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceStep(range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks);
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function fmtY(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v % 1e6 ? 1 : 0)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v % 1e3 ? 1 : 0)}k`;
  return String(Math.round(v * 100) / 100);
}

function fmtTime(ms: number, spanMs: number): string {
  const iso = new Date(ms).toISOString();
  return spanMs > 3 * 86_400_000
    ? iso.slice(5, 10)
    : spanMs > 86_400_000
      ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}`
      : iso.slice(11, 16);
}

/**
 * Draws load, the supplied capacity of each run and the first run's forecast band over time as a
 * standalone SVG with axes, a legend and a title. Each pixel column shows means over its ticks;
 * columns where load exceeded the first run's capacity are marked red along the time axis, taller
 * and darker the larger the share of their ticks that fell short.
 */
export function renderPlotSvg(runs: readonly PlotRun[], options: PlotOptions): string {
  const W = options.width ?? 1200;
  const H = options.height ?? 520;
  const m = { l: 70, r: 20, t: options.subtitle ? 62 : 44, b: 86 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const first = runs[0];
  if (!first) throw new RangeError('renderPlotSvg needs at least one run');
  const s0 = first.series;
  const n = s0.load.length;
  const cols = Math.max(1, Math.min(pw, n));
  const per = n / cols;
  const load = new Float64Array(cols);
  const lo = new Float64Array(cols).fill(Number.NaN);
  const hi = new Float64Array(cols).fill(Number.NaN);
  const caps = runs.map(() => new Float64Array(cols));
  const short = new Float64Array(cols);
  let ymax = 0;
  for (let c = 0; c < cols; c++) {
    const a = Math.floor(c * per);
    const b = Math.min(n, Math.max(a + 1, Math.floor((c + 1) * per)));
    let bandN = 0;
    let l = 0;
    let u = 0;
    let sum = 0;
    const capSum = runs.map(() => 0);
    for (let i = a; i < b; i++) {
      sum += s0.load[i]!;
      if (s0.load[i]! > s0.capacity[i]!) short[c] = short[c]! + 1 / (b - a);
      if (!Number.isNaN(s0.forecastUpper[i]!)) {
        l += s0.forecastLower[i]!;
        u += s0.forecastUpper[i]!;
        bandN++;
      }
      runs.forEach((r, k) => {
        capSum[k] = capSum[k]! + (r.series.capacity[i] ?? 0);
      });
    }
    load[c] = sum / (b - a);
    caps.forEach((cap, k) => {
      cap[c] = capSum[k]! / (b - a);
    });
    if (bandN > 0) {
      lo[c] = l / bandN;
      hi[c] = u / bandN;
    }
    ymax = Math.max(ymax, load[c]!, Number.isNaN(hi[c]!) ? 0 : hi[c]!);
    for (const cap of caps) ymax = Math.max(ymax, cap[c]!);
  }
  const step = niceStep(ymax || 1, 6);
  const top = Math.ceil((ymax || 1) / step) * step;
  const x = (c: number): number => m.l + ((c + 0.5) / cols) * pw;
  const y = (v: number): number => m.t + ph - (Math.max(0, v) / top) * ph;
  const path = (arr: Float64Array, stepped: boolean): string => {
    let d = '';
    for (let c = 0; c < arr.length; c++) {
      const v = arr[c]!;
      if (!Number.isFinite(v)) continue;
      d +=
        d === ''
          ? `M${x(c).toFixed(1)},${y(v).toFixed(1)}`
          : stepped
            ? `H${x(c).toFixed(1)}V${y(v).toFixed(1)}`
            : `L${x(c).toFixed(1)},${y(v).toFixed(1)}`;
    }
    return d;
  };
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(options.title)}</text>`,
  );
  if (options.subtitle)
    out.push(`<text x="${W / 2}" y="42" text-anchor="middle" fill="#444">${esc(options.subtitle)}</text>`);
  // Grid and y axis.
  for (let v = 0; v <= top + 1e-9; v += step) {
    out.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    out.push(
      `<text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#333">${fmtY(v)}</text>`,
    );
  }
  out.push(
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">requests/s</text>`,
  );
  // Time axis.
  const span = n * s0.tickMs;
  const xt = 8;
  for (let k = 0; k <= xt; k++) {
    const px = m.l + (k / xt) * pw;
    out.push(
      `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${m.t + ph}" y2="${m.t + ph + 5}" stroke="#333"/>`,
    );
    out.push(
      `<text x="${px.toFixed(1)}" y="${m.t + ph + 19}" text-anchor="middle" fill="#333">${esc(fmtTime(s0.startMs + (k / xt) * span, span))}</text>`,
    );
  }
  out.push(
    `<text x="${m.l + pw / 2}" y="${m.t + ph + 36}" text-anchor="middle" fill="#333">time (UTC)</text>`,
  );
  out.push(
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`,
  );
  // Forecast band.
  let band = '';
  let back = '';
  for (let c = 0; c < cols; c++) {
    if (Number.isNaN(hi[c]!)) continue;
    band += `${band === '' ? 'M' : 'L'}${x(c).toFixed(1)},${y(hi[c]!).toFixed(1)}`;
    back = `L${x(c).toFixed(1)},${y(lo[c]!).toFixed(1)}` + back;
  }
  if (band) out.push(`<path d="${band}${back}Z" fill="#fdae6b" fill-opacity="0.45" stroke="none"/>`);
  // SLO shortfalls.
  // Height and opacity grow with the share of the column's ticks that fell short.
  for (let c = 0; c < cols; c++) {
    const f = short[c]!;
    if (f <= 0) continue;
    const h = 2 + 14 * f;
    out.push(
      `<rect x="${(x(c) - 0.5).toFixed(1)}" y="${(m.t + ph - h).toFixed(1)}" width="1.5" height="${h.toFixed(1)}" fill="#d62728" fill-opacity="${(0.35 + 0.65 * f).toFixed(2)}"/>`,
    );
  }
  out.push(`<path d="${path(load, false)}" fill="none" stroke="#1f77b4" stroke-width="1.4"/>`);
  runs.forEach((r, k) => {
    out.push(
      `<path d="${path(caps[k]!, true)}" fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="${k === 0 ? 1.8 : 1.2}"${k === 0 ? '' : ' stroke-dasharray="5 3"'}/>`,
    );
  });
  // Legend, in one row under the time axis.
  const items: [string, string, boolean][] = [
    ['load', '#1f77b4', false],
    ...runs.map((r, k): [string, string, boolean] => [
      `${r.label} capacity`,
      COLORS[k % COLORS.length]!,
      k > 0,
    ]),
  ];
  if (band) items.push([`${first.label} forecast band (interval at the lead time)`, '#fdae6b', false]);
  items.push([`load > ${first.label} capacity (height: share of time)`, '#d62728', false]);
  let lx = m.l;
  const ly = H - 22;
  for (const [label, color, dashed] of items) {
    out.push(
      dashed
        ? `<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2" stroke-dasharray="5 3"/>`
        : `<rect x="${lx}" y="${ly - 9}" width="18" height="9" fill="${color}"/>`,
    );
    out.push(`<text x="${lx + 24}" y="${ly}" fill="#222">${esc(label)}</text>`);
    lx += 24 + label.length * 6.8 + 18;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
