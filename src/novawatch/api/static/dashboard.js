// novawatch dashboard: list the model once, then follow the watch stream (server-sent events).
// Plain JS, no build step. Every element the tests look for has a stable id or data- attribute.
"use strict";

const state = { nodes: new Map(), selected: null, detail: new Map(), seq: 0, source: null };
const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const resp = await fetch(url, { headers: { Accept: "application/json" } });
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  return resp.json();
}

function pct(used, total) { return total > 0 ? Math.min(100, Math.round((100 * used) / total)) : 0; }

function bar(label, used, total, unit) {
  const p = pct(used, total);
  const cls = p >= 95 ? "bar full" : p >= 75 ? "bar high" : "bar";
  return `<div class="metric"><span>${label}</span><span>${used}/${total} ${unit}</span></div>` +
         `<div class="${cls}" data-metric="${label}" data-pct="${p}"><span style="width:${p}%"></span></div>`;
}

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function renderNode(node) {
  let card = document.querySelector(`.host[data-uuid="${CSS.escape(node.uuid)}"]`);
  if (!card) {
    card = document.createElement("div");
    card.className = "host";
    card.dataset.uuid = node.uuid;
    card.tabIndex = 0;
    card.addEventListener("click", () => select(node.uuid));
    card.addEventListener("keydown", (e) => { if (e.key === "Enter") select(node.uuid); });
    insertSorted(card, node.host);
  }
  card.dataset.host = node.host;
  card.classList.toggle("down", node.state !== "up" || node.status !== "enabled");
  card.classList.toggle("selected", state.selected === node.uuid);
  card.innerHTML =
    `<div class="name"><span>${esc(node.host)}</span><span data-field="running_vms">${node.running_vms} ${node.running_vms === 1 ? "VM" : "VMs"}</span></div>` +
    `<div class="tags">${esc(node.state)} · ${esc(node.status)}</div>` +
    bar("CPU", node.vcpus_used, node.vcpus, "vCPU") +
    bar("RAM", node.memory_mb_used, node.memory_mb, "MB") +
    bar("disk", node.local_gb_used, node.local_gb, "GB");
}

function insertSorted(card, host) {
  const grid = $("hosts");
  for (const other of grid.children) {
    if ((other.dataset.host || "") > host) { grid.insertBefore(card, other); return; }
  }
  grid.appendChild(card);
}

function removeNode(uuid) {
  state.nodes.delete(uuid);
  const card = document.querySelector(`.host[data-uuid="${CSS.escape(uuid)}"]`);
  if (card) card.remove();
  if (state.selected === uuid) closeDetail();
}

function renderCount() { $("host-count").textContent = `(${state.nodes.size})`; }

async function select(uuid) {
  state.selected = uuid;
  for (const card of document.querySelectorAll(".host")) card.classList.toggle("selected", card.dataset.uuid === uuid);
  const body = await getJSON(`/v1/nodes/${encodeURIComponent(uuid)}`);
  if (state.selected !== uuid) return;
  state.detail = new Map(body.instances.map((i) => [i.uuid, i]));
  $("detail-host").textContent = body.node.host;
  $("detail").hidden = false;
  $("detail").dataset.host = body.node.host;
  renderDetail();
}

function closeDetail() {
  state.selected = null;
  state.detail = new Map();
  $("detail").hidden = true;
  for (const card of document.querySelectorAll(".host.selected")) card.classList.remove("selected");
}

function renderDetail() {
  const rows = [...state.detail.values()].sort((a, b) => (a.display_name + a.uuid).localeCompare(b.display_name + b.uuid));
  $("instances").querySelector("tbody").innerHTML = rows.map((i) =>
    `<tr data-uuid="${esc(i.uuid)}"><td>${esc(i.display_name)}</td><td>${esc(i.state)}</td><td>${esc(i.power_state)}</td>` +
    `<td>${i.vcpus}</td><td>${i.memory_mb}</td><td>${i.disk_gb}</td><td class="uuid">${esc(i.uuid)}</td></tr>`).join("");
  $("detail-empty").hidden = rows.length > 0;
}

function onInstance(change) {
  if (state.selected === null) return;
  const host = $("detail").dataset.host;
  if (change.op === "delete" || !change.data || change.data.host !== host) {
    if (state.detail.delete(change.key)) renderDetail();
  } else {
    state.detail.set(change.key, change.data);
    renderDetail();
  }
}

function addNote(note) {
  const li = document.createElement("li");
  li.className = note.outcome;
  li.dataset.eventType = note.event_type;
  const when = (note.timestamp || note.received_at || "").replace("T", " ").slice(11, 19);
  const what = note.instance ? ` ${note.instance.slice(0, 8)}` : "";
  li.innerHTML = `<span class="when">${esc(when)}</span> <span class="et">${esc(note.event_type)}</span>` +
                 `${esc(what)} <span class="where">${esc(note.host || "")}</span>` +
                 (note.outcome !== "applied" ? ` <em>${esc(note.outcome)}${note.reason ? ": " + esc(note.reason) : ""}</em>` : "");
  const feed = $("feed");
  feed.insertBefore(li, feed.firstChild);
  while (feed.children.length > 100) feed.lastChild.remove();
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.round(seconds / 60)} min`;
}

function renderHealth(h) {
  const badge = $("status");
  badge.dataset.status = h.status;
  badge.textContent = h.status;
  $("summary").textContent = `${h.nodes} nodes · ${h.instances} instances · seq ${state.seq}`;
  const rows = [
    ["status", h.status], ["applied", h.applied], ["ignored", h.ignored], ["rejected", h.rejected],
    ["lag", fmtAge(h.lag_seconds)], ["last applied", h.last_applied_age_seconds === null ? "never" : fmtAge(h.last_applied_age_seconds) + " ago"],
    ["last audit", h.last_audit_age_seconds === null ? "never" : fmtAge(h.last_audit_age_seconds) + " ago"],
    ["drift", h.drift === null ? "not audited" : h.drift], ["problems", h.problems.join("; ") || "none"],
  ];
  $("health").innerHTML = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd data-key="${esc(k)}">${esc(v)}</dd>`).join("");
}

async function refreshHealth() {
  try { renderHealth(await getJSON("/v1/health")); } catch (e) { /* the stream's error handler reports it */ }
}

async function load() {
  if (state.source) { state.source.close(); state.source = null; }
  // List, then watch from the seq the list reflects (list-then-watch, as Kubernetes clients do).
  const nodes = [];
  let seq = null;
  for (let offset = 0; ; offset += 1000) {
    const page = await getJSON(`/v1/nodes?limit=1000&offset=${offset}`);
    if (seq === null) seq = page.seq;
    nodes.push(...page.nodes);
    if (offset + page.nodes.length >= page.total || page.nodes.length === 0) break;
  }
  state.seq = seq;
  state.nodes = new Map(nodes.map((n) => [n.uuid, n]));
  $("hosts").innerHTML = "";
  for (const node of nodes) renderNode(node);
  renderCount();
  const notes = await getJSON("/v1/notifications?limit=100");
  $("feed").innerHTML = "";
  for (const note of notes.notifications.slice().reverse()) addNote(note);
  if (state.selected !== null) {
    if (state.nodes.has(state.selected)) await select(state.selected); else closeDetail();
  }
  await refreshHealth();
  watch(seq);
}

function watch(since) {
  const source = new EventSource(`/v1/watch?since=${since}`);
  state.source = source;
  const track = (e) => { if (e.lastEventId) state.seq = Number(e.lastEventId); };
  source.addEventListener("hello", () => { $("status").dataset.status === "disconnected" && refreshHealth(); });
  source.addEventListener("node", (e) => {
    track(e);
    const change = JSON.parse(e.data);
    if (change.op === "delete") removeNode(change.key);
    else { state.nodes.set(change.key, change.data); renderNode(change.data); }
    renderCount();
  });
  source.addEventListener("instance", (e) => { track(e); onInstance(JSON.parse(e.data)); });
  source.addEventListener("notification", (e) => { track(e); addNote(JSON.parse(e.data).data); });
  source.addEventListener("status", (e) => { track(e); renderHealth(JSON.parse(e.data).data); });
  source.addEventListener("reset", () => { load().catch(showError); });
  source.onerror = () => {
    // EventSource reconnects by itself, sending Last-Event-ID, so the stream resumes where it stopped.
    const badge = $("status");
    badge.dataset.status = "disconnected";
    badge.textContent = "reconnecting…";
  };
}

function showError(err) {
  const badge = $("status");
  badge.dataset.status = "disconnected";
  badge.textContent = `error: ${err.message} (retrying)`;
  setTimeout(() => load().catch(showError), 3000);
}

$("detail-close").addEventListener("click", closeDetail);
setInterval(refreshHealth, 3000);
load().catch(showError);
