// Overview: totals and utilisation, the hosts by utilisation, hosts down or disabled, the model's health,
// each figure also as a plot over time (GET /v1/series, then one `point` a tick from the watch stream).
import { TimePlot, histogram } from "./charts.js";
import { esc, fmtGB, fmtInt, fmtMB, fmtSeconds, getJSON, measure, meter, patch } from "./util.js";

const pctFmt = (v) => `${Number(v).toFixed(v < 10 ? 1 : 0)} %`;
const num = (v) => (Math.abs(v) >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v * 100) / 100));

// Each plot: its title, its series (names in /v1/series), how a value is shown, and how a point is derived
// from the sampled figures (utilisation is used / capacity, both sampled).
const PLOTS = [
  { id: "plot-vcpus", title: "vCPU used (schedulable hosts)", labels: ["vCPU used %"], format: pctFmt,
    names: ["vcpus_used", "vcpus_capacity"], derive: (v) => [ratio(v.vcpus_used, v.vcpus_capacity)] },
  { id: "plot-ram", title: "RAM used", labels: ["RAM used %"], format: pctFmt,
    names: ["ram_mb_used", "ram_mb_capacity"], derive: (v) => [ratio(v.ram_mb_used, v.ram_mb_capacity)] },
  { id: "plot-disk", title: "Disk used", labels: ["disk used %"], format: pctFmt,
    names: ["disk_gb_used", "disk_gb_capacity"], derive: (v) => [ratio(v.disk_gb_used, v.disk_gb_capacity)] },
  { id: "plot-hosts", title: "Hosts down / disabled", labels: ["down", "disabled"], format: num,
    names: ["hosts_down", "hosts_disabled"], derive: (v) => [v.hosts_down, v.hosts_disabled] },
  { id: "plot-rate", title: "Notifications per second", labels: ["applied/s", "rejected/s"], format: num,
    names: ["applied_rate", "rejected_rate"], derive: (v) => [v.applied_rate, v.rejected_rate] },
  { id: "plot-lag", title: "Lag behind Nova", labels: ["lag"], format: (v) => fmtSeconds(v),
    names: ["lag_seconds"], derive: (v) => [v.lag_seconds] },
  { id: "plot-drift", title: "Drift found by the last audit", labels: ["drift"], format: num,
    names: ["drift"], derive: (v) => [v.drift] },
  { id: "plot-instances", title: "Instances", labels: ["instances"], format: num,
    names: ["instances"], derive: (v) => [v.instances] },
];
const NAMES = [...new Set(PLOTS.flatMap((p) => p.names))];

function ratio(used, capacity) {
  return used === null || used === undefined || !capacity ? null : (100 * used) / capacity;
}

const TEMPLATE = `
<section class="cards" id="totals"></section>
<section class="row">
  <div class="panel" id="hist-vcpus"></div><div class="panel" id="hist-ram"></div><div class="panel" id="hist-disk"></div>
</section>
<p class="small muted" id="groups-note"></p>
<h2>Over time <small id="series-note"></small></h2>
<section class="plots">${PLOTS.map((p) => `<div class="plot panel" id="${p.id}"></div>`).join("")}</section>`;

function capacityCard(label, key, figures, allFigures, fmt) {
  const f = figures || {};
  const a = allFigures || {};
  return `<div class="card" data-metric="${key}"><h3>${label}</h3>` +
    `<div class="big"><span data-field="util">${((f.util || 0) * 100).toFixed(1)} %</span> used</div>` +
    meter(f.used || 0, f.capacity || 0, `${label}: ${fmt(f.used)} of ${fmt(f.capacity)}`) +
    `<div class="small"><span data-field="used">${fmt(f.used)}</span> of <span data-field="capacity">${fmt(f.capacity)}</span>` +
    ` · free <span data-field="free">${fmt(f.free)}</span></div>` +
    `<div class="small muted">all hosts: ${fmt(a.used)} of ${fmt(a.capacity)}</div></div>`;
}

function renderSummary(root, s) {
  const h = s.hosts || {};
  const m = s.model || {};
  const cap = s.capacity || {};
  const sched = cap.schedulable || {};
  const all = cap.all || {};
  patch(root.querySelector("#totals"),
    capacityCard("vCPU", "vcpus", sched.vcpus, all.vcpus, fmtInt) +
    capacityCard("RAM", "ram_mb", sched.ram_mb, all.ram_mb, fmtMB) +
    capacityCard("Disk", "disk_gb", sched.disk_gb, all.disk_gb, fmtGB) +
    `<div class="card" data-metric="hosts"><h3>Hosts</h3><div class="big"><span data-field="total">${fmtInt(h.total)}</span></div>` +
    `<div class="small"><a href="#/hosts?state=down" class="${h.down ? "bad" : ""}"><span data-field="down">${fmtInt(h.down)}</span> down</a> · ` +
    `<a href="#/hosts?status=disabled" class="${h.disabled ? "warn" : ""}"><span data-field="disabled">${fmtInt(h.disabled)}</span> disabled</a></div>` +
    `<div class="small muted">${fmtInt(h.schedulable)} up and enabled · ${fmtInt(s.instances)} instances</div></div>` +
    `<div class="card" data-metric="model"><h3>Model</h3><div class="big"><span class="badge" data-status="${esc(m.status)}">${esc(m.status)}</span></div>` +
    `<div class="small"><span data-field="rate">${num(m.rate || 0)}</span>/s applied · lag <span data-field="lag">${fmtSeconds(m.lag_seconds)}</span></div>` +
    `<div class="small">rejected <span data-field="rejected">${fmtInt(m.rejected)}</span> · drift <span data-field="drift">${m.drift ?? "not audited"}</span></div></div>`);
  const groups = s.groups || {};
  // Availability zones and aggregates are shown when the model knows them; otherwise the service says why.
  root.querySelector("#groups-note").textContent = groups.availability_zones || groups.aggregates
    ? "" : `By availability zone or aggregate: not shown, ${groups.note || "the model does not know them"}.`;
  const hist = s.histogram || {};
  const edges = hist.edges || [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
  histogram(root.querySelector("#hist-vcpus"), "Hosts by vCPU use (%)", edges, hist.vcpus || []);
  histogram(root.querySelector("#hist-ram"), "Hosts by RAM use (%)", edges, hist.ram_mb || []);
  histogram(root.querySelector("#hist-disk"), "Hosts by disk use (%)", edges, hist.disk_gb || []);
}

export function mount(root, params, live) {
  root.innerHTML = TEMPLATE;
  const started = performance.now();
  const plots = PLOTS.map((p) => ({ spec: p, plot: new TimePlot(root.querySelector("#" + p.id), p.title, p.labels, p.format) }));
  let alive = true;

  async function relist() {
    const [summary, series] = await Promise.all([
      getJSON("/v1/summary"),
      getJSON(`/v1/series?name=${NAMES.join(",")}&since=-3600`),
    ]);
    if (!alive) return;
    renderSummary(root, summary);
    const t = series.t || [];
    for (const { spec, plot } of plots) {
      const rows = t.map((_, i) => spec.derive(Object.fromEntries(spec.names.map((n) => [n, (series.series[n] || [])[i]]))));
      plot.set(t, spec.labels.map((_, j) => rows.map((r) => r[j])));
    }
    root.querySelector("#series-note").textContent = `last hour, one point per ${series.step} s, then live`;
  }

  const offs = [
    live.on("summary", (s) => alive && renderSummary(root, s)),
    live.on("point", (p) => {
      for (const { spec, plot } of plots) plot.push(p.t, spec.derive(p.values || {}));
    }),
    live.onRelist(() => relist().catch(() => { /* the banner already says the service is away */ })),
  ];
  const onResize = () => plots.forEach(({ plot }) => plot.resize());
  window.addEventListener("resize", onResize);
  const ready = relist().then(() => {
    // From navigation start: what a user waits for on opening the page (once: later visits are not "first").
    if (!performance.getEntriesByName("nw:first-render").length) measure("nw:first-render", 0);
    measure("nw:overview", started);
  });
  return {
    ready,
    unmount() { alive = false; offs.forEach((off) => off()); window.removeEventListener("resize", onResize); },
  };
}
