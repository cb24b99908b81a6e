import uPlot from 'uplot';
import { h } from './dom.js';

/** Fixed size of every chart: the page never jumps as data arrives. */
export const CHART_WIDTH = 540;
export const CHART_HEIGHT = 200;

/** A failover or switchover on the timeline. */
export interface Mark {
  at: number;
  label: string;
}

/** Draws a dashed red line and a label at every mark inside the plotted time range. */
function marksPlugin(marks: () => readonly Mark[], drawn: (n: number) => void): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { left, top, width, height } = u.bbox;
        ctx.save();
        ctx.strokeStyle = '#d0342c';
        ctx.fillStyle = '#d0342c';
        ctx.lineWidth = 2 * uPlot.pxRatio;
        ctx.setLineDash([6 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
        ctx.font = `${11 * uPlot.pxRatio}px system-ui, sans-serif`;
        let n = 0;
        for (const m of marks()) {
          const x = Math.round(u.valToPos(m.at / 1000, 'x', true));
          if (x < left || x > left + width) continue;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillText(m.label, x + 4 * uPlot.pxRatio, top + 12 * uPlot.pxRatio);
          n++;
        }
        ctx.restore();
        drawn(n);
      },
    },
  };
}

/** One series of a chart: its legend name, colour, and whether it is drawn stepped or dashed. */
export interface SeriesSpec {
  label: string;
  stroke: string;
  scale?: string;
  fill?: string;
  dash?: number[];
  stepped?: boolean;
  width?: number;
  /** Hidden from the legend (a band edge). */
  quiet?: boolean;
  format?: (v: number) => string;
}

/** Options of a {@link TimeChart}. */
export interface TimeChartOptions {
  title: string;
  /** What the chart shows, for a screen reader (the canvas has no text). */
  description: string;
  series: SeriesSpec[];
  /** Axes by scale: the left one first. */
  axes: { scale: string; label: string; side?: 1 | 3 }[];
  /** Fill between two series (indices into `series`, 1-based as uPlot counts, upper first). */
  band?: { upper: number; lower: number; fill: string };
  marks: () => readonly Mark[];
}

/**
 * A uPlot time chart of fixed size in a figure with a title, an accessible description that tracks the
 * latest values, and an empty state that says why there is nothing to draw.
 */
export class TimeChart {
  readonly element: HTMLElement;
  readonly #plot: uPlot;
  readonly #empty: HTMLElement;
  readonly #summary: HTMLElement;

  constructor(o: TimeChartOptions) {
    const id = `chart-${o.title.toLowerCase().replace(/[^a-z]+/g, '-')}`;
    this.#empty = h('div', { class: 'empty', hidden: true });
    this.#summary = h('p', { class: 'sr-only', id: `${id}-summary` });
    const host = h('div', {
      class: 'plot',
      role: 'img',
      'aria-label': o.description,
      'aria-describedby': `${id}-summary`,
    });
    this.element = h(
      'figure',
      { class: 'chart', 'aria-labelledby': `${id}-title` },
      h('figcaption', { id: `${id}-title` }, o.title),
      h('div', { class: 'frame' }, host, this.#empty),
      this.#summary,
    );
    const scales: uPlot.Scales = { x: { time: true } };
    for (const a of o.axes)
      scales[a.scale] = { auto: true, range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] };
    this.#plot = new uPlot(
      {
        width: CHART_WIDTH,
        height: CHART_HEIGHT,
        scales,
        cursor: { drag: { x: false, y: false } },
        legend: { show: true, live: true },
        series: [
          {},
          ...o.series.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            width: s.width ?? 2,
            scale: s.scale ?? o.axes[0]!.scale,
            spanGaps: false,
            points: { show: false },
            ...(s.fill ? { fill: s.fill } : {}),
            ...(s.dash ? { dash: s.dash } : {}),
            ...(s.stepped ? { paths: uPlot.paths.stepped!({ align: 1 }) } : {}),
            ...(s.format
              ? { value: (_u: uPlot, v: number | null) => (v === null ? '–' : s.format!(v)) }
              : {}),
            ...(s.quiet ? { class: 'quiet' } : {}),
          })),
        ],
        axes: [
          { stroke: '#555', grid: { stroke: '#eee' } },
          ...o.axes.map((a, i) => ({
            scale: a.scale,
            label: a.label,
            side: a.side ?? (i === 0 ? 3 : 1),
            stroke: '#555',
            size: 56,
            grid: { show: i === 0, stroke: '#eee' },
          })),
        ],
        ...(o.band
          ? { bands: [{ series: [o.band.upper, o.band.lower] as [number, number], fill: o.band.fill }] }
          : {}),
        plugins: [marksPlugin(o.marks, (n) => (this.element.dataset.marks = String(n)))],
      },
      [[], ...o.series.map(() => [])],
      host,
    );
  }

  /** Draws `data` (x in seconds), or the empty state `emptyText` when there is nothing to draw. */
  update(data: uPlot.AlignedData, summary: string, emptyText?: string): void {
    this.#plot.setData(data);
    this.#empty.hidden = emptyText === undefined;
    this.#empty.textContent = emptyText ?? '';
    this.#summary.textContent = emptyText ?? summary;
  }

  /** Redraws (new marks). */
  redraw(): void {
    this.#plot.redraw(false, false);
  }
}
