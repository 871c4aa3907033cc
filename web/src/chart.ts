// The logins chart: failed and successful logins over time, drawn by uPlot (served by the
// control plane, loaded only when a chart is shown). uPlot sets sizes through the CSSOM, which
// the Content-Security-Policy allows (no inline style attributes).
import type uPlot from 'uplot';
import { h } from './dom.js';

const UPLOT_URL = '/console/vendor/uPlot.esm.js';
type UPlotCtor = typeof uPlot;
let loading: Promise<UPlotCtor> | null = null;

function loadUPlot(): Promise<UPlotCtor> {
  loading ??= (import(UPLOT_URL) as Promise<{ default: UPlotCtor }>).then((m) => m.default);
  return loading;
}

export interface LoginPoint {
  time: string;
  succeeded: number;
  failed: number;
}

/** One value per bucket from `fromMs` to `toMs` (empty buckets are zero), in seconds for uPlot. */
export function fillBuckets(points: readonly LoginPoint[], fromMs: number, toMs: number, bucketSeconds: number): uPlot.AlignedData {
  const step = bucketSeconds * 1000;
  const start = Math.floor(fromMs / step) * step;
  const byTime = new Map(points.map((p) => [Math.floor(Date.parse(p.time) / step) * step, p]));
  const xs: number[] = [];
  const ok: number[] = [];
  const bad: number[] = [];
  for (let t = start; t <= toMs; t += step) {
    const p = byTime.get(t);
    xs.push(t / 1000);
    ok.push(p?.succeeded ?? 0);
    bad.push(p?.failed ?? 0);
  }
  return [xs, ok, bad];
}

/** A figure with the chart and, for screen readers and narrow windows, a summary line. */
export async function loginChart(points: readonly LoginPoint[], caption: string, fromMs: number, toMs: number, bucketSeconds: number): Promise<HTMLElement> {
  const total = points.reduce((a, p) => ({ ok: a.ok + p.succeeded, bad: a.bad + p.failed }), { ok: 0, bad: 0 });
  const plot = h('div', { class: 'chart', role: 'img', 'aria-label': `${caption}: ${total.ok} successful and ${total.bad} failed logins.` });
  const figure = h(
    'figure',
    { class: 'chart-figure' },
    plot,
    h(
      'figcaption',
      {},
      `${caption}. Total: `,
      h('span', { class: 'ok-text' }, `${total.ok} successful`),
      ', ',
      h('span', { class: 'bad-text' }, `${total.bad} failed`),
      '.',
    ),
  );
  const UPlot = await loadUPlot();
  const data = fillBuckets(points, fromMs, toMs, bucketSeconds);
  const width = () => Math.max(260, Math.min(plot.clientWidth || 800, 1100));
  const chart = new UPlot(
    {
      width: 800,
      height: 240,
      scales: { x: { time: true, range: () => [fromMs / 1000, toMs / 1000] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{ stroke: '#333' }, { stroke: '#333', label: 'logins' }],
      series: [
        {},
        { label: 'Successful', stroke: '#1b6e2e', width: 2, fill: 'rgba(27,110,46,0.08)', points: { show: false } },
        { label: 'Failed', stroke: '#b3261e', width: 2, fill: 'rgba(179,38,30,0.10)', points: { show: false } },
      ],
    },
    data,
    plot,
  );
  const fit = () => chart.setSize({ width: width(), height: 240 });
  new ResizeObserver(fit).observe(figure);
  requestAnimationFrame(fit);
  return figure;
}
