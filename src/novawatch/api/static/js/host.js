// One host: its record, its usage over time (GET /v1/nodes/{host}/series) and its instances.
import { TimePlot } from "./charts.js";
import { esc, fmtGB, fmtMB, getJSON, meter, patch, throttle } from "./util.js";

const pctFmt = (v) => `${Math.round(v)} %`;

function instanceRows(instances) {
  return instances.map((i) => `<tr data-uuid="${esc(i.uuid)}" data-key="${esc(i.uuid)}"><td><a href="#/instance/${encodeURIComponent(i.uuid)}">${esc(i.display_name)}</a></td>` +
    `<td>${esc(i.state)}</td><td>${esc(i.power_state)}</td><td>${esc(i.task_state || "")}</td><td>${i.vcpus}</td><td>${fmtMB(i.memory_mb)}</td>` +
    `<td>${i.disk_gb} GB</td><td>${esc(i.project_id)}</td><td class="uuid">${esc(i.uuid)}</td></tr>`).join("");
}

export function mount(root, params, live, name) {
  root.innerHTML = `
<p><a href="#/hosts">← hosts</a></p>
<h2>Host <span id="host-name">${esc(name)}</span> <span id="host-badges"></span></h2>
<section class="cards" id="host-usage"></section>
<section class="plots"><div class="plot panel wide" id="plot-host"></div></section>
<h2>Instances <small id="host-instance-count"></small></h2>
<table id="host-instances" class="grid-table">
  <thead><tr><th>name</th><th>state</th><th>power</th><th>task</th><th>vCPU</th><th>RAM</th><th>disk</th><th>project</th><th>uuid</th></tr></thead>
  <tbody></tbody>
</table>
<p id="host-error" class="bad"></p>`;
  const plot = new TimePlot(root.querySelector("#plot-host"), "Usage over time", ["vCPU %", "RAM %", "disk %"], pctFmt, 180);
  let alive = true;
  const path = `/v1/nodes/${encodeURIComponent(name)}`;

  async function loadNode() {
    const body = await getJSON(path);
    if (!alive) return;
    const n = body.node;
    patch(root.querySelector("#host-badges"),
      `<span class="badge" data-status="${n.state === "up" ? "ok" : "failing"}">${esc(n.state)}</span> ` +
      `<span class="badge" data-status="${n.status === "enabled" ? "ok" : "degraded"}" title="${esc(n.disabled_reason || "")}">${esc(n.status)}</span>`);
    patch(root.querySelector("#host-usage"), [
      ["vCPU", n.vcpus_used, n.vcpus, String],
      ["RAM", n.memory_mb_used, n.memory_mb, fmtMB],
      ["Disk", n.local_gb_used, n.local_gb, fmtGB],
    ].map(([label, used, cap, fmt]) => `<div class="card"><h3>${label}</h3>${meter(used, cap, "")}` +
      `<div class="small">${fmt(used)} of ${fmt(cap)} · ` +
      (used > cap ? `<span class="bad">overcommitted by ${fmt(used - cap)}</span>` : `free ${fmt(cap - used)}`) + `</div></div>`).join("") +
      `<div class="card"><h3>Node</h3><div class="small uuid">${esc(n.uuid)}</div><div class="small">${esc(n.hypervisor_hostname)}</div></div>`);
    const instances = body.instances.slice().sort((a, b) => (a.display_name + a.uuid).localeCompare(b.display_name + b.uuid));
    patch(root.querySelector("#host-instances tbody"), instanceRows(instances));
    root.querySelector("#host-instance-count").textContent = `(${instances.length})`;
  }

  async function loadSeries() {
    const s = await getJSON(`${path}/series`);
    if (!alive) return;
    const cap = s.capacity || {};
    const p = (arr, c) => (arr || []).map((v) => (v === null || !c ? null : (100 * v) / c));
    // A step series: repeat the last point at "now" so the line reaches the present.
    const t = (s.t || []).slice();
    const cols = [p(s.vcpus_used, cap.vcpus), p(s.ram_mb_used, cap.ram_mb), p(s.disk_gb_used, cap.disk_gb)];
    if (t.length) { t.push(Math.max(Date.now() / 1000, t[t.length - 1] + 1)); cols.forEach((c) => c.push(c[c.length - 1])); }
    plot.set(t, cols);
  }

  const showError = (err) => { if (alive) root.querySelector("#host-error").textContent = err.message; };
  const load = () => Promise.all([loadNode(), loadSeries()]).catch(showError);
  const refresh = throttle(() => alive && load(), 1000);
  const offs = [
    live.on("node", (c) => { if (c.data?.host === name || c.key === name) refresh(); }),
    live.on("instance", (c) => {
      if (c.data?.host === name || root.querySelector(`#host-instances tr[data-uuid="${CSS.escape(c.key)}"]`)) refresh();
    }),
    live.onRelist(refresh),
  ];
  return { ready: load(), unmount() { alive = false; offs.forEach((off) => off()); } };
}
