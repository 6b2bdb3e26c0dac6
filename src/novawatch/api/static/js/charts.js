// Plots over time with uPlot (vendored under /static/vendor/uplot, loaded as the global `uPlot`),
// and the utilisation histograms as plain bars (ten buckets need no library).
import { esc } from "./util.js";

const COLOURS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed"];

// A plot of one or more series against time. Data is columnar, as /v1/series answers and uPlot takes it:
// `t` (Unix seconds) and one array per series, null where a figure has no value.
export class TimePlot {
  constructor(el, title, labels, format = (v) => String(v), height = 140) {
    this.el = el;
    this.labels = labels;
    this.height = height;
    this.t = [];
    this.columns = labels.map(() => []);
    el.dataset.points = "0";
    const opts = {
      title, width: this.width(), height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{ stroke: "#64748b", grid: { stroke: "#eef2f7" } },
             { stroke: "#64748b", grid: { stroke: "#eef2f7" }, size: 64, values: (u, ticks) => ticks.map(format) }],
      series: [{}, ...labels.map((label, i) => ({
        label, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: true,
        fill: labels.length === 1 ? COLOURS[i] + "22" : undefined,
        value: (u, v) => (v === null || v === undefined ? "–" : format(v)),
      }))],
    };
    this.plot = new uPlot(opts, [[], ...labels.map(() => [])], el);
  }

  // The container's content width (clientWidth includes its padding, which the plot must not overflow).
  width() {
    const style = getComputedStyle(this.el);
    const inner = this.el.clientWidth - parseFloat(style.paddingLeft || 0) - parseFloat(style.paddingRight || 0);
    return Math.max(240, Math.floor(inner || 320));
  }

  // Replace everything shown.
  set(t, columns) {
    this.t = t.slice();
    this.columns = columns.map((c) => c.slice());
    this.draw();
  }

  // Append one sample (live), keeping at most `keep` points.
  push(t, values, keep = 2000) {
    if (this.t.length && t <= this.t[this.t.length - 1]) return;
    this.t.push(t);
    this.el.dataset.pushed = String(Number(this.el.dataset.pushed || 0) + 1);  // points that came live
    values.forEach((v, i) => this.columns[i].push(v ?? null));
    if (this.t.length > keep) { this.t.shift(); for (const c of this.columns) c.shift(); }
    this.draw();
  }

  draw() {
    this.el.dataset.points = String(this.t.length);
    this.el.dataset.last = JSON.stringify(this.columns.map((c) => (c.length ? c[c.length - 1] : null)));
    this.plot.setData([this.t, ...this.columns]);
  }

  resize() { this.plot.setSize({ width: this.width(), height: this.height }); }
}

// A histogram of hosts by utilisation: `edges` are the bucket bounds in percent, `counts` one per bucket.
export function histogram(el, title, edges, counts) {
  const max = Math.max(1, ...counts);
  el.innerHTML = `<h3>${esc(title)}</h3><div class="hist">` + counts.map((n, i) =>
    `<div class="col" title="${n} hosts at ${edges[i]}–${edges[i + 1]} %" data-count="${n}">` +
    `<span class="n">${n}</span><span class="bar" style="height:${((100 * n) / max).toFixed(1)}%"></span>` +
    `<span class="lbl">${edges[i]}</span></div>`).join("") + "</div>";
}
