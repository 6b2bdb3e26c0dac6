// Instances: search by uuid (prefix), name, project, host or state (GET /v1/instances?q=), paged by the
// server; an instance's page: its record and its history (GET /v1/instances/{uuid}/history), oldest first.
import { esc, fmtInt, fmtMB, fmtTime, getJSON, patch, throttle } from "./util.js";

const PAGE = 50;

export function mountSearch(root, params, live) {
  root.innerHTML = `
<form id="instance-search" class="panel query" autocomplete="off">
  <label>Find instances <input name="q" type="search" size="44" placeholder="uuid, name, project, host or state" maxlength="255"></label>
  <button type="submit">Search</button>
</form>
<p class="result"><strong id="instance-total">…</strong> <span id="instance-what">instances</span> <span id="instance-range" class="muted"></span>
  <button type="button" id="instance-prev">‹ previous</button> <button type="button" id="instance-next">next ›</button>
  <span id="instance-error" class="bad"></span></p>
<table id="instance-results" class="grid-table">
  <thead><tr><th>name</th><th>state</th><th>power</th><th>host</th><th>project</th><th>vCPU</th><th>RAM</th><th>uuid</th></tr></thead>
  <tbody></tbody>
</table>`;
  const form = root.querySelector("#instance-search");
  form.elements.q.value = params.get("q") || "";
  let offset = Number(params.get("offset") || 0);
  let alive = true;

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    const text = form.elements.q.value.trim();
    if (text) q.set("q", text);
    try {
      const body = await getJSON(`/v1/instances?${q}`);
      if (!alive) return;
      root.querySelector("#instance-error").textContent = "";
      root.querySelector("#instance-total").textContent = fmtInt(body.total);
      root.querySelector("#instance-what").textContent = body.total === 1 ? "instance" : "instances";
      root.querySelector("#instance-range").textContent = body.total ? `(${offset + 1}–${offset + body.instances.length})` : "";
      root.querySelector("#instance-prev").disabled = offset === 0;
      root.querySelector("#instance-next").disabled = offset + PAGE >= body.total;
      patch(root.querySelector("#instance-results tbody"), body.instances.map((i) =>
        `<tr data-uuid="${esc(i.uuid)}" data-key="${esc(i.uuid)}"><td><a href="#/instance/${encodeURIComponent(i.uuid)}">${esc(i.display_name)}</a></td>` +
        `<td>${esc(i.state)}</td><td>${esc(i.power_state)}</td>` +
        `<td>${i.host ? `<a href="#/host/${encodeURIComponent(i.host)}">${esc(i.host)}</a>` : ""}</td>` +
        `<td>${esc(i.project_id)}</td><td>${i.vcpus}</td><td>${fmtMB(i.memory_mb)}</td><td class="uuid">${esc(i.uuid)}</td></tr>`).join(""));
    } catch (err) { if (alive) root.querySelector("#instance-error").textContent = err.message; }
  }

  function go() {
    const data = new URLSearchParams();
    if (form.elements.q.value.trim()) data.set("q", form.elements.q.value.trim());
    if (offset) data.set("offset", String(offset));
    history.replaceState(null, "", `#/instances${data.toString() ? "?" + data : ""}`);
    return load();
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); offset = 0; go(); });
  root.querySelector("#instance-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); go(); });
  root.querySelector("#instance-next").addEventListener("click", () => { offset += PAGE; go(); });
  const offs = [live.onRelist(load)];
  return { ready: load(), unmount() { alive = false; offs.forEach((off) => off()); } };
}

function changeText(changes) {
  return Object.entries(changes || {}).map(([field, [old, now]]) =>
    `<span class="chg" data-field="${esc(field)}"><b>${esc(field)}</b> ${esc(JSON.stringify(old))} → ${esc(JSON.stringify(now))}</span>`).join(" ");
}

const FIELDS = ["uuid", "display_name", "state", "power_state", "task_state", "host", "node", "project_id", "vcpus",
  "memory_mb", "disk_gb", "locked", "volumes"];

export function mountInstance(root, params, live, uuid) {
  root.innerHTML = `
<p><a href="#/instances">← instances</a></p>
<h2>Instance <span id="instance-name"></span> <small class="uuid">${esc(uuid)}</small></h2>
<p id="instance-gone" class="warn" hidden>This instance is no longer in the model (deleted); its history is below.</p>
<dl id="instance-record" class="record"></dl>
<h2>What happened to it <small id="history-note" class="muted"></small></h2>
<table id="instance-history" class="grid-table">
  <thead><tr><th>#</th><th>when (Nova's timestamp)</th><th>what</th><th>op</th><th>cause</th><th>changed</th></tr></thead>
  <tbody></tbody>
</table>
<p id="instance-error" class="bad"></p>`;
  let alive = true;
  const base = `/v1/instances/${encodeURIComponent(uuid)}`;

  async function loadRecord() {
    try {
      const body = await getJSON(base);
      if (!alive) return;
      const i = body.instance;
      root.querySelector("#instance-gone").hidden = true;
      root.querySelector("#instance-name").textContent = i.display_name;
      patch(root.querySelector("#instance-record"), FIELDS.map((f) => {
        let v = i[f];
        if (f === "host" && v) v = `<a href="#/host/${encodeURIComponent(v)}">${esc(v)}</a>`;
        else if (f === "memory_mb") v = esc(fmtMB(v));
        else v = esc(Array.isArray(v) ? v.join(", ") || "none" : v ?? "");
        return `<dt>${f}</dt><dd data-field="${f}">${v}</dd>`;
      }).join(""));
    } catch (err) {
      if (err.status === 404) { root.querySelector("#instance-gone").hidden = false; root.querySelector("#instance-record").innerHTML = ""; }
      else throw err;
    }
  }

  async function loadHistory() {
    const body = await getJSON(`${base}/history`);
    if (!alive) return;
    root.querySelector("#history-note").textContent =
      `(${body.history.length} changes, oldest first${body.truncated ? "; older ones were dropped" : ""})`;
    patch(root.querySelector("#instance-history tbody"), body.history.map((h) =>
      `<tr data-seq="${h.seq}" data-key="${h.seq}" data-event-type="${esc(h.event_type || "")}"><td>${h.seq}</td>` +
      `<td title="applied at ${esc(fmtTime(h.at))}">${esc(fmtTime(h.timestamp || h.at))}</td>` +
      `<td class="et">${esc(h.event_type || h.cause)}</td><td>${esc(h.op)}</td><td>${esc(h.cause)}</td><td>${changeText(h.changes)}</td></tr>`).join(""));
  }

  const showError = (err) => { if (alive) root.querySelector("#instance-error").textContent = err.message; };
  const load = () => Promise.all([loadRecord(), loadHistory()]).then(() => {
    if (alive) root.querySelector("#instance-error").textContent = "";
  }).catch(showError);
  const refresh = throttle(() => alive && load(), 500);
  const offs = [live.on("instance", (c) => { if (c.key === uuid) refresh(); }), live.onRelist(refresh)];
  return { ready: load(), unmount() { alive = false; offs.forEach((off) => off()); } };
}
