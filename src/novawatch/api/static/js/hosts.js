// Hosts: the capacity query form and a table of every matching host, sorted and paged by the server
// (GET /v1/nodes); the table scrolls virtually: only the rows in view are in the page, fetched 100 at a time.
import { esc, fmtInt, getJSON, measure, meter, patch, throttle } from "./util.js";

const ROW = 28;        // px per row: the table's rows are absolutely placed at index * ROW
const PAGE = 100;      // rows per request
const MARGIN = 20;     // rows rendered beyond the viewport, so a small scroll shows rows at once

const COLUMNS = [
  { key: "host", label: "host", sort: "host" },
  { key: "state", label: "state" },
  { key: "status", label: "status" },
  { key: "vcpu", label: "vCPU used" },
  { key: "ram", label: "RAM used" },
  { key: "disk", label: "disk used" },
  { key: "free_vcpus", label: "free vCPU", sort: "free_vcpus" },
  { key: "free_ram_mb", label: "free RAM", sort: "free_ram_mb" },
  { key: "free_disk_gb", label: "free disk", sort: "free_disk_gb" },
  { key: "running_vms", label: "VMs", sort: "running_vms" },
];

const TEMPLATE = `
<form id="capacity" class="panel query" autocomplete="off">
  <strong>Which hosts can take</strong>
  <label>free vCPU ≥ <input name="vcpus" type="number" min="0" step="1" inputmode="numeric"></label>
  <label>free RAM ≥ <input name="ram_gb" type="number" min="0" step="any" inputmode="decimal"> GB</label>
  <label>free disk ≥ <input name="disk_gb" type="number" min="0" step="1" inputmode="numeric"> GB</label>
  <label>state <select name="state"><option value="">any</option><option>up</option><option>down</option></select></label>
  <label>status <select name="status"><option value="">any</option><option>enabled</option><option>disabled</option></select></label>
  <label>host <input name="host" type="search" placeholder="name or glob: host-00*" maxlength="255"></label>
  <button type="submit" id="capacity-run">Find hosts</button>
  <button type="button" id="capacity-clear">Clear</button>
</form>
<p class="result"><strong id="host-total">…</strong> <span id="host-total-what">hosts</span> <small id="host-timing" class="muted"></small><span id="host-error" class="bad"></span></p>
<div class="vtable" id="host-table" role="table" aria-label="hosts">
  <div class="vhead" role="row">${COLUMNS.map((c) => `<span role="columnheader" class="c-${c.key}${c.sort ? " sortable" : ""}" data-sort="${c.sort || ""}"${c.sort ? ' tabindex="0" title="sort (again: descending)"' : ""}>${c.label}</span>`).join("")}</div>
  <div class="vscroll" id="host-scroll"><div class="vspacer" id="host-spacer"></div></div>
</div>`;

function rowHTML(n, i) {
  const down = n.state !== "up" ? " down" : "";
  const disabled = n.status !== "enabled" ? " disabled" : "";
  return `<a class="vrow${down}${disabled}" role="row" href="#/host/${encodeURIComponent(n.host)}" data-index="${i}" data-host="${esc(n.host)}" data-key="${esc(n.host)}" style="top:${i * ROW}px">` +
    `<span class="c-host">${esc(n.host)}</span><span class="c-state">${esc(n.state)}</span><span class="c-status" title="${esc(n.disabled_reason || "")}">${esc(n.status)}</span>` +
    `<span class="c-vcpu">${meter(n.vcpus_used, n.vcpus, "")}${n.vcpus_used}/${n.vcpus}</span>` +
    `<span class="c-ram">${meter(n.memory_mb_used, n.memory_mb, "")}${Math.round(n.memory_mb_used / 1024)}/${Math.round(n.memory_mb / 1024)} GB</span>` +
    `<span class="c-disk">${meter(n.local_gb_used, n.local_gb, "")}${n.local_gb_used}/${n.local_gb} GB</span>` +
    `<span class="c-free_vcpus" data-value="${n.free_vcpus}">${n.free_vcpus}</span>` +
    `<span class="c-free_ram_mb" data-value="${n.free_ram_mb}">${(n.free_ram_mb / 1024).toFixed(1)} GB</span>` +
    `<span class="c-free_disk_gb" data-value="${n.free_disk_gb}">${n.free_disk_gb} GB</span>` +
    `<span class="c-running_vms">${n.running_vms}</span></a>`;
}

// The query the form and the URL (#/hosts?...) describe, as /v1/nodes parameters.
function queryFrom(params) {
  const q = new URLSearchParams();
  const vcpus = params.get("vcpus"), ram = params.get("ram_gb"), disk = params.get("disk_gb");
  if (vcpus) q.set("min_free_vcpus", String(Math.ceil(Number(vcpus))));
  if (ram) q.set("min_free_ram_mb", String(Math.ceil(Number(ram) * 1024)));
  if (disk) q.set("min_free_disk_gb", String(Math.ceil(Number(disk))));
  for (const key of ["state", "status", "host"]) if (params.get(key)) q.set(key, params.get(key));
  q.set("sort", params.get("sort") || "host");
  return q;
}

export function mount(root, params, live) {
  root.innerHTML = TEMPLATE;
  const form = root.querySelector("#capacity");
  for (const [k, v] of params) if (form.elements[k]) form.elements[k].value = v;
  const scroll = root.querySelector("#host-scroll");
  const spacer = root.querySelector("#host-spacer");
  let query = queryFrom(params);
  let sort = query.get("sort");
  let pages = new Map();      // page number -> nodes, or a promise while it loads
  let total = 0;
  let generation = 0;         // bumps on every new query: answers to older ones are dropped
  let alive = true;

  function markSort() {
    for (const h of root.querySelectorAll(".vhead [data-sort]")) {
      const key = h.dataset.sort;
      h.classList.toggle("asc", key && sort === key);
      h.classList.toggle("desc", key && sort === "-" + key);
      h.setAttribute("aria-sort", sort === key ? "ascending" : sort === "-" + key ? "descending" : "none");
    }
  }

  async function fetchPage(p, gen) {
    const q = new URLSearchParams(query);
    q.set("limit", String(PAGE));
    q.set("offset", String(p * PAGE));
    const body = await getJSON(`/v1/nodes?${q}`);
    if (gen !== generation || !alive) return null;
    total = body.total;
    pages.set(p, body.nodes);
    return body;
  }

  function visible() {
    const first = Math.max(0, Math.floor(scroll.scrollTop / ROW) - MARGIN);
    const last = Math.min(total, Math.ceil((scroll.scrollTop + scroll.clientHeight) / ROW) + MARGIN);
    return [first, last];
  }

  function render() {
    spacer.style.height = `${total * ROW}px`;
    root.querySelector("#host-total").textContent = fmtInt(total);
    root.querySelector("#host-total-what").textContent = total === 1 ? "host" : "hosts";
    const [first, last] = visible();
    const html = [];
    for (let i = first; i < last; i++) {
      const page = pages.get(Math.floor(i / PAGE));
      const n = Array.isArray(page) ? page[i % PAGE] : undefined;
      if (n) html.push(rowHTML(n, i));
      else html.push(`<div class="vrow loading" style="top:${i * ROW}px" data-index="${i}"><span>loading…</span></div>`);
    }
    patch(spacer, html.join(""));
  }

  // Fetch the pages in view that are not loaded yet, then draw.
  async function fill() {
    const [first, last] = visible();
    const gen = generation;
    const wanted = [];
    for (let p = Math.floor(first / PAGE); p <= Math.floor(Math.max(first, last - 1) / PAGE); p++) {
      if (!pages.has(p)) { wanted.push(p); pages.set(p, "loading"); }
    }
    render();
    if (wanted.length) {
      try { await Promise.all(wanted.map((p) => fetchPage(p, gen))); }
      catch (err) { wanted.forEach((p) => pages.delete(p)); showError(err); return; }
      if (gen === generation) render();
    }
  }

  function showError(err) { root.querySelector("#host-error").textContent = ` ${err.message}`; }

  // A new query (form, sort): page 0 first, then whatever is in view; timed for the tests and the user.
  async function run(resetScroll) {
    const started = performance.now();
    generation += 1;
    pages = new Map();
    root.querySelector("#host-error").textContent = "";
    if (resetScroll) scroll.scrollTop = 0;
    try {
      const gen = generation;
      const body = await fetchPage(Math.floor(scroll.scrollTop / ROW / PAGE), gen);
      if (!body) return;
      render();
      const ms = performance.now() - started;
      measure("nw:query", started);
      root.querySelector("#host-timing").textContent = `(answered in ${Math.round(ms)} ms, as of seq ${body.seq})`;
      root.querySelector("#host-table").dataset.query = query.toString();
      await fill();
    } catch (err) { showError(err); }
  }

  // Keep what is on screen current: re-read the pages in view when nodes change (at most every 2 s).
  const refresh = throttle(() => {
    if (!alive) return;
    generation += 1;
    const keep = pages;
    pages = new Map();
    const [first, last] = visible();
    const gen = generation;
    const inView = [];
    for (let p = Math.floor(first / PAGE); p <= Math.floor(Math.max(first, last - 1) / PAGE); p++) inView.push(p);
    Promise.all(inView.map((p) => fetchPage(p, gen))).then(() => { if (gen === generation) render(); })
      .catch(() => { if (gen === generation) { pages = keep; } });
  }, 2000);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new URLSearchParams();
    for (const el of form.elements) if (el.name && el.value) data.set(el.name, el.value);
    if (sort !== "host") data.set("sort", sort);
    history.replaceState(null, "", `#/hosts${data.toString() ? "?" + data : ""}`);
    query = queryFrom(data);
    run(true);
  });
  root.querySelector("#capacity-clear").addEventListener("click", () => {
    form.reset();
    form.requestSubmit();
  });
  for (const h of root.querySelectorAll(".vhead [data-sort]")) {
    if (!h.dataset.sort) continue;
    h.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); h.click(); } });
    h.addEventListener("click", () => {
      const key = h.dataset.sort;
      sort = sort === key ? "-" + key : key;  // first click ascending, second descending
      query.set("sort", sort);
      markSort();
      const data = new URLSearchParams(location.hash.split("?")[1] || "");
      data.set("sort", sort);
      history.replaceState(null, "", `#/hosts?${data}`);
      run(true);
    });
  }
  let ticking = false;
  scroll.addEventListener("scroll", () => {
    if (ticking) return;
    ticking = true;
    requestAnimationFrame(() => { ticking = false; fill(); });
  });
  const offs = [live.on("node", refresh), live.onRelist(() => run(false))];
  markSort();
  const ready = run(true);
  return { ready, unmount() { alive = false; offs.forEach((off) => off()); } };
}
