// WebRTC to the server: WHIP signalling (POST /whip with the offer, DELETE to leave), the camera
// up and the swapped video back on one transceiver, the microphone optional (it comes back in
// sync with the video), and docs/protocol.md's control messages on the `control` data channel.
// PeerLink has Connection's shape (open, close, send, isOpen, followReconnect) so app.js treats
// both transports alike; it also carries the camera itself (`carriesCamera`).
import { Backoff, Retrying, redact } from "./connection.js";

export const CONTROL_LABEL = "control";
// The largest data channel message both ends take (aiortc and browsers announce 256 KB).
export const MAX_CHANNEL_MESSAGE_BYTES = 262144;
const GATHERING_TIMEOUT_MS = 5000; // no trickle: the offer waits for its candidates, this long at most

export function webrtcAvailable() {
  return typeof globalThis.RTCPeerConnection === "function";
}

/** The WHIP endpoint of a server URL (ws, wss, http or https; a proxy's path prefix kept). */
export function whipUrl(server) {
  const url = new URL(server.trim());
  const schemes = { "ws:": "http:", "wss:": "https:", "http:": "http:", "https:": "https:" };
  if (!schemes[url.protocol]) throw new Error(`not a ws://, wss://, http:// or https:// URL: ${server}`);
  url.protocol = schemes[url.protocol];
  url.pathname = url.pathname.replace(/\/?$/, "/") + "whip";
  url.search = "";
  url.hash = "";
  return url.href;
}

/** The ICE servers of WHIP's `Link: <url>; rel="ice-server"; username=...; credential=...` headers. */
export function parseIceLinks(header) {
  const servers = [];
  for (const link of (header ?? "").split(/,\s*(?=<)/)) {
    const url = /^\s*<([^>]*)>/.exec(link);
    if (!url) continue;
    const params = {};
    for (const [, key, quoted, bare] of link.matchAll(/;\s*([\w-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))/g)) {
      params[key.toLowerCase()] = quoted ?? bare;
    }
    if (params.rel !== "ice-server") continue;
    const server = { urls: url[1] };
    if (params.username !== undefined) Object.assign(server, { username: params.username, credential: params.credential });
    servers.push(server);
  }
  return servers;
}

/** Base64 of a Blob (a source photo for the JSON `source_face` message). */
export async function blobToBase64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

// What an HTTP refusal means for the user, and whether trying again can help.
function describeRefusal(status, body) {
  const detail = body.trim() ? ` (${body.trim()})` : "";
  if (status === 401) return { text: "The server refused this connection: is the token right?", retry: false };
  if (status === 403) return { text: `The server refused this page's origin${detail}.`, retry: false };
  if (status === 404 || status === 405) {
    return { text: "This server does not take WebRTC clients: choose WebSocket.", retry: false };
  }
  if (status >= 500) return { text: `The server cannot take this client now${detail}.`, retry: true };
  return { text: `The server refused the connection: HTTP ${status}${detail}.`, retry: false };
}

class Refused extends Error {
  constructor({ text, retry }) {
    super(text);
    this.retry = retry;
  }
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHERING_TIMEOUT_MS); // send what was gathered; host candidates come first
  });
}

/**
 * One logical WebRTC session that survives a lost connection (reconnects with backoff) until
 * close(). Like Connection, a first attempt that fails for a reason retrying cannot fix (token,
 * origin, no WebRTC on the server) is not retried.
 * Callbacks: onOpen(), onMessage(text), onState(state, text, level), onTrack(track, stream).
 */
export class PeerLink {
  constructor({ onOpen, onMessage, onState, onTrack, backoff = new Backoff() }) {
    Object.assign(this, { onOpen, onMessage, onState, onTrack });
    this.carriesCamera = true;
    this.pc = null;
    this.channel = null;
    this.resource = null; // the session's URL, for DELETE
    this.retrying = new Retrying({ attempt: (why) => this.#attempt(why), hangUp: () => this.#hangUp(), onState, backoff });
  }

  get isOpen() {
    return this.channel !== null && this.channel.readyState === "open";
  }

  /** Start streaming `camera` (and `microphone`, a MediaStream or null) to `server`. */
  open({ server, token, camera, microphone = null }) {
    Object.assign(this, { url: whipUrl(server), token, camera, microphone });
    this.retrying.start();
  }

  close() {
    this.retrying.stop();
  }

  send(data) {
    if (!this.isOpen || typeof data !== "string") return false;
    this.channel.send(data);
    return true;
  }

  /** The server's `reconnect` message (it is draining): see Retrying.asked. */
  followReconnect(message) {
    this.retrying.asked(message);
  }

  /** The camera was restarted (another device): send the new one on the same transceiver. */
  replaceCamera(camera) {
    this.camera = camera;
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === "video" || s.track === null);
    sender?.replaceTrack(camera.getVideoTracks()[0] ?? null);
  }

  /** The peer connection's statistics (bytes, frames, audio), for the page and the tests. */
  async stats() {
    return this.pc ? [...(await this.pc.getStats()).values()] : [];
  }

  #headers(extra = {}) {
    return this.token ? { Authorization: `Bearer ${this.token}`, ...extra } : extra;
  }

  #hangUp() {
    const { pc, channel, resource } = this;
    this.pc = this.channel = this.resource = null;
    if (channel) channel.onopen = channel.onmessage = channel.onclose = null;
    if (pc) {
      pc.onconnectionstatechange = pc.ontrack = null;
      pc.close();
    }
    // Frees the slot on the server at once; a server already gone is fine.
    if (resource) fetch(resource, { method: "DELETE", headers: this.#headers(), keepalive: true }).catch(() => {});
  }

  async #attempt(why = "") {
    const connecting = `Connecting to ${redact(this.url)} over WebRTC…`;
    this.onState("connecting", why ? `${why} ${connecting}` : connecting, why ? "warn" : "info");
    const pc = new RTCPeerConnection();
    this.pc = pc;
    try {
      const options = await fetch(this.url, { method: "OPTIONS", headers: this.#headers() });
      if (!options.ok) throw new Refused(describeRefusal(options.status, await options.text()));
      pc.setConfiguration({ iceServers: parseIceLinks(options.headers.get("Link")) });
      for (const track of this.camera.getVideoTracks()) pc.addTransceiver(track, { direction: "sendrecv" });
      for (const track of this.microphone?.getAudioTracks() ?? []) pc.addTransceiver(track, { direction: "sendrecv" });
      const channel = pc.createDataChannel(CONTROL_LABEL);
      this.channel = channel;
      channel.onopen = () => {
        this.retrying.opened();
        this.onState("open", "Connected", "ok");
        this.onOpen();
      };
      channel.onmessage = (event) => this.onMessage(event.data);
      pc.ontrack = (event) => this.onTrack(event.track, event.streams[0] ?? new MediaStream([event.track]));
      pc.onconnectionstatechange = () => {
        if (pc === this.pc && pc.connectionState === "failed") this.#lost("The WebRTC connection was lost.", true);
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (pc !== this.pc) return; // closed meanwhile
      const response = await fetch(this.url, {
        method: "POST",
        headers: this.#headers({ "Content-Type": "application/sdp" }),
        body: pc.localDescription.sdp,
      });
      const answer = await response.text();
      if (response.status !== 201) throw new Refused(describeRefusal(response.status, answer));
      this.resource = new URL(response.headers.get("Location"), this.url).href;
      if (pc !== this.pc) return this.#hangUp();
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
    } catch (error) {
      if (pc !== this.pc) return;
      const refused = error instanceof Refused;
      this.#lost(refused ? error.message : `Cannot reach ${redact(this.url)}: ${error.message}`, !refused || error.retry);
    }
  }

  #lost(text, retry) {
    this.retrying.lost(text, retry, `Could not connect: ${text}`);
  }
}
