// The facestream web client: camera -> server -> swapped video, over WebRTC (the camera as a
// video track, the result played in a <video>) or a WebSocket (JPEG frames, drawn on a canvas).
// This module only wires the page together; the parts live in protocol.js (wire format),
// flow.js (in-flight window), connection.js (socket, reconnect), webrtc.js (WHIP, peer),
// camera.js, display.js, options.js (the live options' controls), ui.js.

import * as protocol from "./protocol.js";
import { InFlightWindow } from "./flow.js";
import { Connection, defaultServerUrl, socketUrl } from "./connection.js";
import { MAX_CHANNEL_MESSAGE_BYTES, PeerLink, blobToBase64, webrtcAvailable, whipUrl } from "./webrtc.js";
import {
  JpegEncoder,
  activeDeviceId,
  cameraUnsupportedReason,
  describeCameraError,
  listCameras,
  openCamera,
  photoToJpeg,
} from "./camera.js";
import { FrameView, LatencyMeter, RateMeter } from "./display.js";
import { describeOptions, loadOptions, optionControl } from "./options.js";
import { MessageLog, describeServerError, renderStats } from "./ui.js";

// A frame unanswered this long is given up on, so a lost frame cannot stall the window.
const FRAME_TIMEOUT_MS = 5000;
// A paced frame may go this much before the server's time: half a frame of a 30 fps camera,
// so the camera frame nearest to the server's turn is the one sent.
const PACE_SLACK_MS = 1000 / 30 / 2;
const METER_INTERVAL_MS = 250;

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  output: $("output"),
  outputVideo: $("output-video"),
  transport: $("transport"),
  microphone: $("microphone"),
  placeholder: $("output-placeholder"),
  video: $("camera"),
  serverUrl: $("server-url"),
  token: $("token"),
  connect: $("connect"),
  disconnect: $("disconnect"),
  faceFile: $("face-file"),
  faceSnapshot: $("face-snapshot"),
  facePreview: $("face-preview"),
  faceStatus: $("face-status"),
  cameraSelect: $("camera-select"),
  cameraStart: $("camera-start"),
  sendWidth: $("send-width"),
  jpegQuality: $("jpeg-quality"),
  windowSize: $("window-size"),
  optionControls: $("option-controls"),
  optionsStatus: $("options-status"),
  statsRefresh: $("stats-refresh"),
  stats: $("stats"),
  meters: {
    fps: $("fps"),
    latency: $("latency"),
    shown: $("frames-shown"),
    sent: $("frames-sent"),
    skipped: $("frames-skipped"),
    superseded: $("frames-superseded"),
    inFlight: $("in-flight"),
  },
};

const log = new MessageLog($("messages"), $("clear-messages"));
const view = new FrameView(ui.output);
const fps = new RateMeter();
const latency = new LatencyMeter();
const frameEncoder = new JpegEncoder();
const snapshotEncoder = new JpegEncoder(); // its own canvas: a snapshot must not race a frame encode

const state = {
  window: new InFlightWindow({ limit: Number(ui.windowSize.value), timeoutMs: FRAME_TIMEOUT_MS, paceSlackMs: PACE_SLACK_MS }),
  encoding: false, // one frame encode at a time; camera frames meanwhile are skipped
  sent: 0,
  skipped: 0,
  superseded: 0,
  sourceFace: null, // JPEG Blob, re-sent after every reconnect (the server forgets it)
  sourceUrl: null,
  userOptions: {}, // options the user changed, re-sent after every reconnect
  confirmedOptions: null,
  frameLoop: false,
  cameraStarting: null, // the pending camera start, if any
  videoShown: 0, // WebRTC frames presented in the output <video>
  videoSent: 0, // camera frames the WebRTC encoder sent
  microphone: null, // the MediaStream sent with WebRTC, if the user asked
};

const socket = new Connection({ onOpen: connected, onMessage: received, onState: connectionState });
const peer = new PeerLink({ onOpen: connected, onMessage: received, onState: connectionState, onTrack: showTrack });
let connection = socket; // the transport of the current (or last) connection

// ---- connection ---------------------------------------------------------------------

function connectionState(name, text, level) {
  ui.status.textContent = text;
  ui.status.dataset.state = name;
  const active = name !== "closed";
  ui.connect.disabled = active;
  ui.disconnect.disabled = !active;
  ui.statsRefresh.disabled = name !== "open";
  if (level === "warn" || level === "error") log.add(text, level);
  if (name !== "open") state.window.reset(); // answers to frames sent on a dead socket never come
}

function connected() {
  state.window.reset();
  latency.reset();
  if (state.sourceFace) sendSourceFace();
  // Also asks for the effective options when the user changed none (an empty change).
  connection.send(protocol.config(state.userOptions));
}

function received(data) {
  try {
    if (typeof data === "string") handleJson(protocol.decodeJson(data));
    else handleBinary(protocol.decodeBinary(data));
  } catch (error) {
    log.add(`Unreadable message from the server (${error.code ?? error.name}): ${error.message}`, "error");
  }
}

function handleBinary(message) {
  if (message.kind !== protocol.Kind.PROCESSED_FRAME) return;
  const before = state.window.lastSettled;
  if (state.window.settle(message.seq, message.paceMs)) {
    // Frames between the last answer and this one were replaced on the server (latest wins).
    state.superseded += message.seq - before - 1;
  }
  const now = performance.now();
  latency.add(now - message.timestamp);
  fps.tick(now);
  view.show(message.payload, message.seq).then(
    (shown) => shown && (ui.placeholder.hidden = true),
    (error) => log.add(`Could not show a processed frame: ${error.message}`, "error"),
  );
}

function handleJson(message) {
  switch (message.type) {
    case "error":
      if (Number.isInteger(message.seq)) state.window.settle(message.seq);
      log.add(describeServerError(message), "error");
      if (message.code === protocol.ErrorCode.BAD_CONFIG) configRefused(message.message);
      break;
    case "source_face_confirmation":
      if (message.status === "success") {
        setNote(ui.faceStatus, message.message || "Source face set.", "ok");
      } else {
        setNote(ui.faceStatus, message.message || "The server refused the source face.", "error");
        log.add(`Source face refused: ${message.message} — your frames come back unchanged.`, "error");
      }
      break;
    case "config_confirmation":
      state.confirmedOptions = message.options;
      showOptions(message.options);
      setNote(ui.optionsStatus, `In effect: ${describeOptions(optionTable, message.options) || "server defaults"}`,
        "ok");
      break;
    case "stats":
      renderStats(ui.stats, message.data);
      break;
    case "reconnect": // the server is draining: go (behind a load balancer, to another server)
      connection.followReconnect(message);
      break;
    default:
      break; // pong, and message types newer than this page: nothing to do
  }
}

const params = new URLSearchParams(location.search);
ui.serverUrl.value = params.get("server") ?? defaultServerUrl();
ui.token.value = params.get("token") ?? "";
if (!webrtcAvailable()) ui.transport.querySelector('option[value="webrtc"]').disabled = true;
ui.transport.value = webrtcAvailable() ? (params.get("transport") ?? "webrtc") : "websocket";

$("connection-form").addEventListener("submit", async (event) => {
  event.preventDefault(); // Connect, or Enter in a field: connect without reloading the page
  const webrtc = ui.transport.value === "webrtc";
  const token = ui.token.value.trim();
  let url;
  try {
    url = webrtc ? whipUrl(ui.serverUrl.value) : socketUrl(ui.serverUrl.value, token);
  } catch (error) {
    log.add(error.message, "error");
    return;
  }
  connection.close();
  connection = webrtc ? peer : socket;
  ui.output.hidden = webrtc;
  ui.outputVideo.hidden = !webrtc;
  if (!webrtc) {
    if (!ui.video.srcObject) startCamera(ui.cameraSelect.value);
    connection.open(url);
    return;
  }
  if (!ui.video.srcObject) await startCamera(ui.cameraSelect.value);
  if (!ui.video.srcObject) return; // the camera could not open: already explained
  await openMicrophone();
  ui.outputVideo.muted = !state.microphone; // your own voice comes back only if you sent it
  peer.open({ server: ui.serverUrl.value, token, camera: ui.video.srcObject, microphone: state.microphone });
});

ui.disconnect.addEventListener("click", () => {
  connection.close();
  connectionState("closed", "Disconnected", "info");
});

async function openMicrophone() {
  state.microphone?.getTracks().forEach((track) => track.stop());
  state.microphone = null;
  if (!ui.microphone.checked) return;
  try {
    state.microphone = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  } catch (error) {
    log.add(`No microphone (${error.name}): streaming the video only.`, "warn");
  }
}

/** The swapped video (and your audio) from the server, over WebRTC. */
function showTrack(track, stream) {
  if (track.kind !== "video") return;
  ui.outputVideo.srcObject = stream;
  ui.outputVideo.play().catch(() => {}); // autoplay may wait for a gesture; Connect was one
}

// Every frame the output <video> presents counts as shown (requestVideoFrameCallback).
function countPresentedFrames() {
  const video = ui.outputVideo;
  if (!video.requestVideoFrameCallback) return;
  const presented = () => {
    state.videoShown += 1;
    fps.tick(performance.now());
    ui.placeholder.hidden = true;
    video.requestVideoFrameCallback(presented);
  };
  video.requestVideoFrameCallback(presented);
}
countPresentedFrames();

ui.statsRefresh.addEventListener("click", () => connection.send(protocol.statsRequest()));

// ---- camera and frames --------------------------------------------------------------

function startCamera(deviceId) {
  // Connect and Start camera may both ask at once: one getUserMedia at a time.
  state.cameraStarting ??= openSelectedCamera(deviceId).finally(() => (state.cameraStarting = null));
  return state.cameraStarting;
}

async function openSelectedCamera(deviceId) {
  const unsupported = cameraUnsupportedReason();
  if (unsupported) {
    log.add(unsupported, "error");
    return;
  }
  ui.cameraStart.disabled = true;
  try {
    await openCamera(ui.video, deviceId);
    if (connection === peer) peer.replaceCamera(ui.video.srcObject);
    await refreshCameraList();
    ui.faceSnapshot.disabled = false;
    ui.cameraStart.textContent = "Restart camera";
    startFrameLoop();
  } catch (error) {
    log.add(describeCameraError(error), "error");
  } finally {
    ui.cameraStart.disabled = false;
  }
}

async function refreshCameraList() {
  const cameras = await listCameras();
  const current = activeDeviceId(ui.video);
  ui.cameraSelect.replaceChildren(
    ...cameras.map(({ deviceId, label }) => new Option(label, deviceId, false, deviceId === current)),
  );
  ui.cameraSelect.disabled = cameras.length === 0;
}

// One capture per camera frame where the browser says when frames arrive
// (requestVideoFrameCallback); once per display refresh otherwise.
function startFrameLoop() {
  if (state.frameLoop) return;
  state.frameLoop = true;
  const next = () =>
    ui.video.requestVideoFrameCallback ? ui.video.requestVideoFrameCallback(tick) : requestAnimationFrame(tick);
  const tick = () => {
    next();
    cameraFrame();
  };
  next();
}

function cameraFrame() {
  if (!connection.isOpen || connection.carriesCamera || !ui.video.videoWidth) return;
  const capturedAt = performance.now();
  if (state.encoding || !state.window.canSend(capturedAt)) {
    state.skipped += 1; // the server is behind: send the next camera frame instead, not a backlog
    return;
  }
  sendFrame(capturedAt);
}

async function sendFrame(capturedAt) {
  state.encoding = true;
  try {
    const jpeg = await frameEncoder.encode(ui.video, {
      width: ui.video.videoWidth,
      height: ui.video.videoHeight,
      maxWidth: Number(ui.sendWidth.value),
      quality: Number(ui.jpegQuality.value),
    });
    if (!connection.isOpen) return;
    const seq = state.window.sent(performance.now());
    // The echoed timestamp is the capture time, so latency includes encoding and decoding.
    const header = protocol.encodeHeader({ kind: protocol.Kind.FRAME, seq, timestamp: capturedAt });
    connection.send(new Blob([header, jpeg])); // no copy of the JPEG into JavaScript memory
    state.sent += 1;
  } catch (error) {
    log.add(`Could not encode a camera frame: ${error.message}`, "error");
  } finally {
    state.encoding = false;
  }
}

ui.cameraStart.addEventListener("click", () => startCamera(ui.cameraSelect.value));
ui.cameraSelect.addEventListener("change", () => startCamera(ui.cameraSelect.value));
navigator.mediaDevices?.addEventListener?.("devicechange", () => ui.video.srcObject && refreshCameraList());
ui.windowSize.addEventListener("change", () => {
  const limit = Math.min(8, Math.max(1, Math.round(Number(ui.windowSize.value)) || 2));
  ui.windowSize.value = String(limit);
  state.window.limit = limit;
});
bindOutput(ui.jpegQuality, $("jpeg-quality-value"), (v) => Number(v).toFixed(2));

// ---- source face --------------------------------------------------------------------

ui.faceFile.addEventListener("change", async () => {
  const file = ui.faceFile.files[0];
  if (!file) return;
  setNote(ui.faceStatus, `Reading ${file.name}…`, "info");
  try {
    setSourceFace(await photoToJpeg(file));
  } catch (error) {
    setNote(ui.faceStatus, error.message, "error");
    log.add(error.message, "error");
  }
  ui.faceFile.value = ""; // choosing the same file again must fire `change` again
});

ui.faceSnapshot.addEventListener("click", async () => {
  const { videoWidth: width, videoHeight: height } = ui.video;
  if (!width) return;
  setSourceFace(await snapshotEncoder.encode(ui.video, { width, height, maxWidth: 1280, quality: 0.92 }));
});

function setSourceFace(jpeg) {
  state.sourceFace = jpeg;
  if (state.sourceUrl) URL.revokeObjectURL(state.sourceUrl);
  state.sourceUrl = URL.createObjectURL(jpeg);
  ui.facePreview.src = state.sourceUrl;
  ui.facePreview.hidden = false;
  if (connection.isOpen) sendSourceFace();
  else setNote(ui.faceStatus, "Ready: it is sent when you connect.", "info");
}

async function sendSourceFace() {
  setNote(ui.faceStatus, "Sent; waiting for the server to find the face…", "info");
  if (!connection.carriesCamera) {
    const header = protocol.encodeHeader({ kind: protocol.Kind.SOURCE_FACE });
    connection.send(new Blob([header, state.sourceFace]));
    return;
  }
  const photo = await fitForChannel(state.sourceFace);
  connection.send(protocol.encodeJson("source_face", { data: await blobToBase64(photo) }));
}

/** The photo as a data channel message can carry it: re-encoded smaller until its base64 fits. */
async function fitForChannel(jpeg) {
  const fits = (blob) => Math.ceil(blob.size / 3) * 4 + 64 <= MAX_CHANNEL_MESSAGE_BYTES;
  if (fits(jpeg)) return jpeg;
  const bitmap = await createImageBitmap(jpeg);
  try {
    let fitted = jpeg;
    for (let width = bitmap.width; !fits(fitted) && width > 64; ) {
      width = Math.floor(width * 0.75);
      fitted = await snapshotEncoder.encode(bitmap, { width: bitmap.width, height: bitmap.height, maxWidth: width, quality: 0.85 });
    }
    return fitted;
  } finally {
    bitmap.close();
  }
}

// ---- live options -------------------------------------------------------------------

let optionTable = []; // the server's live options (protocol/options.py), once loaded
const optionControls = new Map(); // option name -> its control

loadOptions().then(
  (table) => {
    optionTable = table;
    for (const option of table) {
      if ((option.kind === "choice" || option.kind === "set") && option.choices.length === 0) continue;
      const control = optionControl(option);
      // `change` fires when a slider is released: one config message per gesture, not per pixel.
      control.input.addEventListener("change", () => changeOption(option.name, control.read()));
      optionControls.set(option.name, control);
      ui.optionControls.append(control.element);
    }
    if (state.confirmedOptions) showOptions(state.confirmedOptions);
  },
  (error) => log.add(`Could not load the live options (${error.message}): their controls are missing.`, "warn"),
);

function changeOption(name, value) {
  state.userOptions[name] = value;
  if (connection.send(protocol.config({ [name]: value }))) setNote(ui.optionsStatus, "Sending…", "info");
  else setNote(ui.optionsStatus, "Applies when you connect.", "info");
}

function configRefused(message) {
  const confirmed = state.confirmedOptions ?? {};
  for (const name of Object.keys(state.userOptions)) {
    if (JSON.stringify(state.userOptions[name]) !== JSON.stringify(confirmed[name])) delete state.userOptions[name];
  }
  if (state.confirmedOptions) showOptions(state.confirmedOptions);
  setNote(ui.optionsStatus, `Refused: ${message}`, "error");
}

function showOptions(options) {
  for (const [name, control] of optionControls) {
    if (name in options) {
      control.write(options[name]);
      control.input.dispatchEvent(new Event("input")); // refresh the <output> next to a slider
    }
  }
}

// ---- meters and small helpers -------------------------------------------------------

function updateMeters() {
  const now = performance.now();
  const m = ui.meters;
  m.fps.textContent = connection.isOpen || fps.rate(now) ? fps.rate(now).toFixed(1) : "–";
  // The median is steady enough to read; the last round trip shows the jitter.
  m.latency.textContent = Number.isNaN(latency.last)
    ? "–"
    : `${latency.median.toFixed(0)} ms · last ${latency.last.toFixed(0)}`;
  m.latency.dataset.lastMs = String(latency.last);
  m.latency.dataset.medianMs = String(latency.median);
  m.shown.textContent = String(view.shown + state.videoShown);
  m.sent.textContent = String(state.sent + state.videoSent);
  m.skipped.textContent = String(state.skipped);
  m.superseded.textContent = String(state.superseded);
  // WebRTC has no window of JPEG frames: its encoder and congestion control pace the camera.
  m.inFlight.textContent = connection.carriesCamera ? "–" : `${state.window.inFlight}/${state.window.limit}`;
}

// Camera frames the WebRTC encoder sent (the browser's own count), for the "sent" meter.
setInterval(async () => {
  if (connection !== peer || !peer.isOpen) return;
  const sent = (await peer.stats()).find((s) => s.type === "outbound-rtp" && s.kind === "video");
  if (sent) state.videoSent = sent.framesSent ?? 0;
}, 1000);
setInterval(updateMeters, METER_INTERVAL_MS);

function setNote(element, text, level) {
  element.textContent = text;
  element.dataset.level = level;
}

function bindOutput(input, output, format) {
  const update = () => (output.textContent = format(input.value));
  input.addEventListener("input", update);
  update();
}

// For the browser console and the end-to-end test: inspect the state, send raw messages.
window.facestream = {
  get connection() {
    return connection;
  },
  peer,
  state,
  view,
  sendJson: (message) => connection.send(JSON.stringify(message)),
};

const unsupported = cameraUnsupportedReason();
if (unsupported) {
  ui.cameraStart.disabled = true;
  log.add(unsupported, "warn");
}
