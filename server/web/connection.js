// The WebSocket to the server: URL defaults, close-code explanations, reconnect with backoff,
// and following the server's own `reconnect` requests (it is draining).
// Frames and control messages pass through untouched; app.js decides what they mean.
import { PACING } from "./protocol.js";

/** ws(s)://<this page's host and path>: the server that served the page is the default. */
export function defaultServerUrl(loc = globalThis.location) {
  if (!loc || !/^https?:$/.test(loc.protocol)) return "ws://localhost:8765/"; // opened from a file
  const url = new URL("./", loc.href); // keep a reverse proxy's path prefix, drop index.html or ?query
  url.protocol = loc.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/** The URL to open: http(s) accepted for convenience, the token as a `token` query parameter. */
export function socketUrl(server, token) {
  const url = new URL(server.trim());
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Error(`not a ws:// or wss:// URL: ${server}`);
  if (token) url.searchParams.set("token", token);
  else url.searchParams.delete("token");
  return url.href;
}

// What each close code means for the user, and whether trying again can help.
const CLOSE_CODES = {
  1000: { text: "The server closed the connection.", retry: false },
  1001: { text: "The server is going away (restarting or shutting down).", retry: true },
  1002: { text: "Protocol error: the server and this page disagree (reload the page).", retry: false },
  1003: { text: "The server refused a message type.", retry: false },
  1006: { text: "The connection was lost.", retry: true },
  1007: { text: "The server received invalid data.", retry: false },
  1008: { text: "The server refused this connection (is the token right?).", retry: false },
  1009: {
    text: "A message was too big for the server: lower the send width or JPEG quality, or pick a smaller photo.",
    retry: false,
  },
  1011: { text: "The server hit an internal error.", retry: true },
  1012: { text: "The server is restarting.", retry: true },
  1013: { text: "The server is overloaded; try again later.", retry: true },
  1014: { text: "A gateway in front of the server failed.", retry: true },
};

export function describeClose(code, reason) {
  const known = CLOSE_CODES[code] ?? { text: "The connection closed.", retry: false };
  const detail = reason ? ` (${reason})` : "";
  return { text: `${known.text} [code ${code}${detail}]`, retry: known.retry };
}

/** Exponential, capped, "equal jitter" delays, as client/backoff.py: never zero, never a herd. */
export class Backoff {
  constructor({ initialMs = 500, maxMs = 10000, factor = 2, random = Math.random } = {}) {
    Object.assign(this, { initialMs, maxMs, factor, random, attempts: 0 });
  }

  nextDelay() {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** Math.min(this.attempts, 64));
    this.attempts += 1;
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  reset() {
    this.attempts = 0;
  }
}

/**
 * When to connect again, for either transport (this WebSocket, webrtc.js's peer): after a lost
 * connection, with backoff, until stop(). A first attempt that never connects is not retried:
 * that is almost always a wrong URL or token, which the user must fix. A server that drains
 * asks its clients to reconnect (asked): behind a load balancer the new connection lands on
 * another server; that is an instruction, not a failure, so the backoff is left as it is.
 * The transport gives it attempt(why) (connect; `why` is shown with it) and hangUp() (drop the
 * current connection, quietly), and calls opened() and lost().
 */
export class Retrying {
  constructor({ attempt, hangUp, onState, backoff }) {
    Object.assign(this, { attempt, hangUp, onState, backoff });
    this.wanted = false; // the user wants to be connected
    this.everOpened = false; // this URL worked at least once since Connect was pressed
    this.timer = null;
  }

  start() {
    this.stop();
    this.wanted = true;
    this.everOpened = false;
    this.backoff.reset();
    this.attempt("");
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = null;
    this.hangUp();
  }

  opened() {
    this.everOpened = true;
    this.backoff.reset();
  }

  /** The server's `reconnect` message ({reason, delay_ms}): again after delay_ms (at once for 0;
   * never longer than the backoff's cap); if that attempt fails, the usual backoff takes over. */
  asked({ reason = "", delay_ms: delayMs = 0 } = {}) {
    if (!this.wanted) return;
    this.hangUp();
    const why = `Server asked to reconnect (${reason || "no reason given"}).`;
    clearTimeout(this.timer);
    const delay = Math.min(this.backoff.maxMs, Math.max(0, Number(delayMs) || 0));
    if (delay === 0) {
      this.attempt(why);
      return;
    }
    this.onState("reconnecting", `${why} Reconnecting in ${(delay / 1000).toFixed(1)} s…`, "warn");
    this.timer = setTimeout(() => this.attempt(""), delay);
  }

  /** The connection failed or ended: `text` says why, `retry` whether trying again can help,
   * `neverConnected` what to say when it never connected since start(). */
  lost(text, retry, neverConnected = text) {
    this.hangUp();
    if (!this.wanted) return;
    if (!this.everOpened || !retry) {
      this.wanted = false;
      this.onState("closed", this.everOpened ? text : neverConnected, "error");
      return;
    }
    const delay = this.backoff.nextDelay();
    this.onState("reconnecting", `${text} Reconnecting in ${(delay / 1000).toFixed(1)} s…`, "warn");
    this.timer = setTimeout(() => this.attempt(""), delay);
  }
}

/**
 * One logical WebSocket connection that survives server restarts (`Retrying` decides when to
 * try again). Callbacks: onOpen(), onMessage(data: string | ArrayBuffer), onState(state, text, level).
 */
export class Connection {
  constructor({ onOpen, onMessage, onState, WebSocketImpl = globalThis.WebSocket, backoff = new Backoff() }) {
    Object.assign(this, { onOpen, onMessage, onState, WebSocketImpl });
    this.ws = null;
    this.url = null;
    this.retrying = new Retrying({
      attempt: (why) => this.#attempt(why),
      hangUp: () => this.#hangUp(),
      onState,
      backoff,
    });
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === this.WebSocketImpl.OPEN;
  }

  get backoff() {
    return this.retrying.backoff;
  }

  set backoff(backoff) {
    this.retrying.backoff = backoff;
  }

  open(url) {
    this.url = url;
    this.retrying.start();
  }

  close() {
    this.retrying.stop();
  }

  /** Send if open; returns false (and sends nothing) otherwise. */
  send(data) {
    if (!this.isOpen) return false;
    this.ws.send(data);
    return true;
  }

  /** The server's `reconnect` message: close, and open again as it asks (see Retrying.asked). */
  followReconnect(message) {
    if (this.ws) this.retrying.asked(message);
  }

  /** Whether the server paces this connection (it chose the `facestream.pacing` subprotocol). */
  get paced() {
    return this.isOpen && this.ws.protocol === PACING;
  }

  /** Bytes queued in the browser, not yet on the wire (a slow uplink shows here first). */
  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  #hangUp() {
    if (!this.ws) return;
    const ws = this.ws;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    ws.close(1000, "bye");
  }

  /** Open a socket; `why` (the server's reconnect request) is shown and logged with it. */
  #attempt(why = "") {
    const connecting = `Connecting to ${redact(this.url)}…`;
    this.onState("connecting", why ? `${why} ${connecting}` : connecting, why ? "warn" : "info");
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url, [PACING]); // a server that paces says so by choosing it
    } catch (error) {
      this.retrying.wanted = false;
      this.onState("closed", `Cannot open ${redact(this.url)}: ${error.message}`, "error");
      return;
    }
    ws.binaryType = "arraybuffer"; // frames arrive as ArrayBuffer, read with a DataView
    this.ws = ws;
    ws.onopen = () => {
      this.retrying.opened();
      this.onState("open", "Connected", "ok");
      this.onOpen();
    };
    ws.onmessage = (event) => this.onMessage(event.data);
    ws.onclose = (event) => this.#closed(ws, event);
  }

  #closed(ws, event) {
    if (ws !== this.ws) return; // an old socket we already gave up on
    this.ws = null;
    const { text, retry } = describeClose(event.code, event.reason);
    // Browsers hide why a handshake failed (refused, wrong path, HTTP 401/403): all read as 1006.
    const why = event.code === 1006 ? "the server is unreachable or refused the connection (check the URL and token)" : text;
    this.retrying.lost(text, retry, `Could not connect to ${redact(this.url)}: ${why}`);
  }
}

/** The URL for display: never show the token on screen (screenshots, screen sharing). */
export function redact(url) {
  try {
    const parsed = new URL(url);
    if (parsed.searchParams.has("token")) parsed.searchParams.set("token", "***");
    return parsed.href;
  } catch {
    return url;
  }
}
