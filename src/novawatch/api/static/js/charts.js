// Plots over time with uPlot (vendored under /static/vendor/uplot, loaded as the global `uPlot`),
// and the utilisation histogram as plain bars (ten buckets need no library).
import { esc } from "./util.js";

const COLOURS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed"];

// Time series in the several shapes a series endpoint may answer with, as [times (s), values].
export function toColumns(series) {
  const points = series?.points ?? series?.data ?? series;
  if (Array.isArray(points)) {
    const xs = [], ys = [];
    for (const p of points) {
      const [t, v] = Array.isArray(p) ? p : [p.t ?? p.time ?? p.ts, p.v ?? p.value];
      xs.push(typeof t === "string" ? Date.parse(t) / 1000 : t);
      ys.push(v);
    }
    return [xs, ys];
  }
  if (points && Array.isArray(points.t ?? points.times)) return [points.t ?? points.times, points.v ?? points.values];
  return [[], []];
}

// Several series sampled at different times, merged onto one time axis (missing values are gaps).
function align(columns) {
  const times = [...new Set(columns.flatMap(([xs]) => xs))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const out = [times];
  for (const [xs, ys] of columns) {
    const row = new Array(times.length).fill(null);
    xs.forEach((t, i) => { row[index.get(t)] = ys[i]; });
    out.push(row);
  }
  return out;
}

export class TimePlot {
  // `el`: the container; `labels`: one per series; `unit`: formats the axis and the legend's values.
  constructor(el, title, labels, format = (v) => String(v)) {
    this.el = el;
    this.labels = labels;
    this.points = 0;
    this.el.dataset.points = "0";
    const width = Math.max(240, el.clientWidth || 320);
    const opts = {
      title, width, height: 150,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{ stroke: "#64748b", grid: { stroke: "#eef2f7" } },
             { stroke: "#64748b", grid: { stroke: "#eef2f7" }, size: 60, values: (u, ticks) => ticks.map(format) }],
      series: [{}, ...labels.map((label, i) => ({
        label, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: true,
        fill: labels.length === 1 ? COLOURS[i] + "22" : undefined,
        value: (u, v) => (v === null || v === undefined ? "–" : format(v)),
      }))],
    };
    this.plot = new uPlot(opts, [[], ...labels.map(() => [])], el);
  }

  set(columns) {
    const data = align(columns);
    this.points = data[0].length;
    this.el.dataset.points = String(this.points);
    this.el.dataset.last = JSON.stringify(data.slice(1).map((row) => row[row.length - 1] ?? null));
    this.plot.setData(data);
  }

  resize() { this.plot.setSize({ width: Math.max(240, this.el.clientWidth), height: 150 }); }
}

// A histogram: `buckets` as counts (equal-width over 0-100 %) or as [{lo, hi, count}].
export function histogram(el, title, buckets) {
  const rows = (buckets || []).map((b, i, all) => (typeof b === "number"
    ? { lo: Math.round((100 * i) / all.length), hi: Math.round((100 * (i + 1)) / all.length), count: b }
    : { lo: b.lo ?? b.from ?? b.min, hi: b.hi ?? b.to ?? b.max, count: b.count ?? b.hosts ?? 0 }));
  const max = Math.max(1, ...rows.map((r) => r.count));
  el.innerHTML = `<h3>${esc(title)}</h3><div class="hist">` + rows.map((r) =>
    `<div class="col" title="${r.count} hosts at ${r.lo}-${r.hi} %" data-count="${r.count}">` +
    `<span class="n">${r.count}</span><span class="bar" style="height:${((100 * r.count) / max).toFixed(1)}%"></span>` +
    `<span class="lbl">${r.lo}%</span></div>`).join("") + "</div>";
}
