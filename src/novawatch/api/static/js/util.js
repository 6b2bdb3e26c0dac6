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

// Sizes in binary units (as Nova counts them): 1 GB = 1024 MB.
function fmtSize(value, units) {
  if (value === null || value === undefined) return "–";
  let v = value, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${Math.round(v)} ${units[0]}` : `${v.toFixed(1)} ${units[i]}`;
}

export function fmtMB(mb) { return fmtSize(mb, ["MB", "GB", "TB", "PB"]); }

export function fmtGB(gb) { return fmtSize(gb, ["GB", "TB", "PB"]); }

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// A time (Unix seconds or ISO text) as "YYYY-MM-DD HH:MM:SS.mmm" UTC.
export function fmtTime(when) {
  if (!when) return "";
  const text = typeof when === "string" && !/[zZ]|[+-]\d\d:?\d\d$/.test(when) ? when.replace(" ", "T") + "Z" : when;
  const d = new Date(typeof when === "number" ? when * 1000 : text);
  return Number.isNaN(d.getTime()) ? String(when) : d.toISOString().replace("T", " ").slice(0, 23);
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

// Make el's children match `html`, changing only what differs. Live updates use it instead of innerHTML so that
// the nodes they do not change stay in place: a link being clicked or hovered when an update lands would
// otherwise be replaced between the press and the release, and the click lost. Children with a data-key are
// matched by key (a table's rows, re-sorted or scrolled), the others by position.
export function patch(el, html) {
  const next = document.createElement("template");
  next.innerHTML = html;
  morphChildren(el, next.content);
}

function morphChildren(el, next) {
  const keyed = new Map();
  for (const child of el.children) if (child.dataset.key) keyed.set(child.dataset.key, child);
  let at = el.firstChild; // every node before it is settled
  for (const want of [...next.childNodes]) {
    const key = want.dataset?.key;
    const have = key ? keyed.get(key) : at;
    if (key) keyed.delete(key);
    if (have && have.nodeName === want.nodeName && have.dataset?.key === key) {
      if (have.nodeType === Node.ELEMENT_NODE) {
        morphAttributes(have, want);
        morphChildren(have, want);
      } else if (have.nodeValue !== want.nodeValue) {
        have.nodeValue = want.nodeValue;
      }
      if (have === at) at = at.nextSibling;
      else el.insertBefore(have, at);
    } else {
      el.insertBefore(want, at);
    }
  }
  while (at) {
    const gone = at;
    at = at.nextSibling;
    gone.remove();
  }
}

function morphAttributes(have, want) {
  for (const { name, value } of want.attributes) if (have.getAttribute(name) !== value) have.setAttribute(name, value);
  for (const { name } of [...have.attributes]) if (!want.hasAttribute(name)) have.removeAttribute(name);
}
