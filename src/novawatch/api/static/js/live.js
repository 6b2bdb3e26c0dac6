// The watch stream (server-sent events): one EventSource for the page, handed out to the views.
// EventSource resumes by itself with Last-Event-ID after a dropped connection; when the service answered
// with an error instead (it was restarting), the browser gives up, so we reopen from the last event id we
// saw. An id is SEQ.INCARNATION (the service's run): one from another run or replica gets "reset", never a
// wrong resume.
// While disconnected, the banner says so; on reconnecting, and on "reset" (our position was too old),
// every view re-lists so it catches up with what it missed.

// "summary" and "point" come every SUMMARY_SECONDS (?summary=): they carry no id and are not replayed.
const KINDS = ["node", "instance", "notification", "status", "summary", "point"];
const SUMMARY_SECONDS = 1;
// With a tick every second, this long a silence means the connection is dead even if no error says so
// (a service that went away without closing it, a half-open TCP connection): reopen it.
const SILENCE_MS = 5000;

export class Live {
  constructor(banner) {
    this.banner = banner;
    this.seq = null;     // the sequence number of the last event (a list's seq compares with it)
    this.lastId = null;  // the last event id, sent back as ?since= when we reopen the stream ourselves
    this.source = null;
    this.handlers = new Map();   // kind -> Set of fn(change)
    this.relisters = new Set();  // fn() called after a reconnect or reset
    this.connected = false;
    this.everConnected = false;
    this.retry = null;
    this.heard = 0;
    this.relists = 0;  // how many times the views re-read everything (after a reconnection or a reset)
    this.resets = 0;   // how many times the service said our position was too old to resume from
    setInterval(() => this.watchdog(), 1000);
  }

  watchdog() {
    if (this.source && this.connected && performance.now() - this.heard > SILENCE_MS) {
      this.connected = false;
      this.show("Reconnecting to the model service… (no word from it for a while)");
      this.start();
    }
  }

  on(kind, fn) {
    if (!this.handlers.has(kind)) this.handlers.set(kind, new Set());
    this.handlers.get(kind).add(fn);
    return () => this.handlers.get(kind).delete(fn);
  }

  onRelist(fn) { this.relisters.add(fn); return () => this.relisters.delete(fn); }

  start() {
    clearTimeout(this.retry);
    if (this.source) this.source.close();
    const url = `/v1/watch?summary=${SUMMARY_SECONDS}` +
      (this.lastId === null ? "" : `&since=${encodeURIComponent(this.lastId)}`);
    const source = new EventSource(url);
    this.source = source;
    this.heard = performance.now();
    source.onmessage = () => { this.heard = performance.now(); };
    source.addEventListener("hello", (e) => {
      this.heard = performance.now();
      const hello = JSON.parse(e.data);
      const wasDown = this.everConnected && !this.connected;
      this.connected = true;
      this.everConnected = true;
      this.remember(e);  // its id is where this stream goes on from
      this.show(null);
      if (wasDown) this.relist();
    });
    source.addEventListener("reset", (e) => {
      this.heard = performance.now();
      this.resets += 1;
      this.seq = JSON.parse(e.data).seq;
      this.remember(e);
      this.relist();
    });
    for (const kind of KINDS) {
      source.addEventListener(kind, (e) => {
        this.heard = performance.now();
        this.remember(e);
        let change;
        try { change = JSON.parse(e.data); } catch { return; }
        for (const fn of this.handlers.get(kind) || []) fn(change);
        for (const fn of this.handlers.get("*") || []) fn(kind, change);
      });
    }
    source.onerror = () => {
      if (source !== this.source) return;
      this.connected = false;
      this.show("Reconnecting to the model service… figures shown may be out of date.");
      if (source.readyState === EventSource.CLOSED) {
        this.retry = setTimeout(() => this.start(), 2000);
      }
    };
  }

  // Keep the event's id (hello, reset and changes carry one; summary ticks repeat the last).
  remember(e) {
    if (!e.lastEventId) return;
    this.lastId = e.lastEventId;
    const seq = parseInt(e.lastEventId, 10);
    if (!Number.isNaN(seq)) this.seq = seq;
  }

  relist() {
    this.relists += 1;
    for (const fn of this.relisters) fn();
  }

  show(message) {
    this.banner.hidden = message === null;
    this.banner.textContent = message || "";
    document.body.dataset.live = message === null ? "connected" : "reconnecting";
  }
}
