// The dashboard: a hash router over four views, one watch stream shared by them, and a header that
// shows the model's health. The REST API is the page's only source; nothing is kept between views.
import { mount as overview } from "./overview.js";
import { mount as hosts } from "./hosts.js";
import { mount as host } from "./host.js";
import { mountInstance, mountSearch } from "./instances.js";
import { Live } from "./live.js";
import { $, esc } from "./util.js";

const live = new Live($("banner"));
let current = null;

const ROUTES = [
  [/^\/?$/, "overview", (root, params) => overview(root, params, live)],
  [/^\/hosts$/, "hosts", (root, params) => hosts(root, params, live)],
  [/^\/host\/(.+)$/, "hosts", (root, params, m) => host(root, params, live, decodeURIComponent(m[1]))],
  [/^\/instances$/, "instances", (root, params) => mountSearch(root, params, live)],
  [/^\/instance\/(.+)$/, "instances", (root, params, m) => mountInstance(root, params, live, decodeURIComponent(m[1]))],
];

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  if (current) current.unmount();
  const root = $("view");
  for (const [re, tab, mount] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    document.body.dataset.view = tab;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.tab === tab);
    current = mount(root, params, m);
    window.__novawatch.view = current.ready;  // settles when the view has drawn what it first fetched
    return;
  }
  root.innerHTML = `<p class="bad">No page ${esc(path)}: go to the <a href="#/">overview</a>.</p>`;
  current = null;
}

// The header's health badge follows the summary ticks (and the model's own status events).
live.on("summary", (s) => {
  const m = s.model || {};
  const badge = $("status");
  badge.dataset.status = m.status || "unknown";
  badge.textContent = m.status || "unknown";
  $("summary").textContent = `${(s.hosts?.total ?? 0).toLocaleString("en-US")} hosts · ${(s.instances ?? 0).toLocaleString("en-US")} instances · seq ${s.seq}`;
});

window.__novawatch = { live, view: null };
window.addEventListener("hashchange", route);
route();
live.start();
