// Small helpers shared by the views: fetching JSON from the REST API, escaping, formatting.

export const $ = (id) => document.getElementById(id);

export class HttpError extends Error {
  constructor(url, status, message) { super(message); this.url = url; this.status = status; }
}

// GET a JSON document from the model service; a non-2xx answer raises with the service's own error text.
export async function getJSON(url, signal) {
  const resp = await fetch(url, { headers: { Accept: "application/json" }, signal });
  if (!resp.ok) {
    let detail = "";
    try { detail = (await resp.json()).error || ""; } catch { /* not JSON: the status says enough */ }
    throw new HttpError(url, resp.status, `${url}: HTTP ${resp.status}${detail ? ": " + detail : ""}`);
  }
  return resp.json();
}

export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function pct(used, total) { return total > 0 ? (100 * used) / total : 0; }

export function fmtInt(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }

export function fmtMB(mb) {
  if (mb === null || mb === undefined) return "–";
  const abs = Math.abs(mb);
  if (abs >= 1024 * 1024) return `${(mb / (1024 * 1024)).toFixed(1)} TB`;
  if (abs >= 1024) return `${(mb / 1024).toFixed(1)} GB`;
  return `${Math.round(mb)} MB`;
}

export function fmtGB(gb) { return gb === null || gb === undefined ? "–" : (Math.abs(gb) >= 1024 ? `${(gb / 1024).toFixed(1)} TB` : `${Math.round(gb)} GB`); }

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(typeof iso === "number" ? iso * 1000 : iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 19);
}

// A bar showing how full something is, with the figures in its title.
export function meter(used, total, label) {
  const p = pct(used, total);
  const cls = p >= 95 ? "meter full" : p >= 75 ? "meter high" : "meter";
  return `<span class="${cls}" title="${esc(label)}" data-pct="${Math.round(p)}"><span style="width:${Math.min(100, p).toFixed(1)}%"></span></span>`;
}

// Call fn at most once per `ms`, the last call winning (live events arrive in bursts).
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  return () => {
    if (timer) { pending = true; return; }
    fn();
    timer = setTimeout(function again() {
      timer = null;
      if (pending) { pending = false; fn(); timer = setTimeout(again, ms); }
    }, ms);
  };
}

// Record how long something took since `start` (performance.now()), as a measure the tests can read.
export function measure(name, start) {
  try { performance.measure(name, { start, end: performance.now() }); } catch { /* older browsers: no figure */ }
}
