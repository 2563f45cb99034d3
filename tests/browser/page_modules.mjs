// The page's DOM-free logic, in Node (no browser, no npm): node tests/browser/page_modules.mjs
// connection.js (URLs, close codes, reconnect policy and the server's reconnect requests, with a
// fake WebSocket), display.js meters and how options.js shows the live options.
// Prints "N passed, 0 failed" and exits 0, or throws on the first failed check.
import assert from "node:assert/strict";

import { Backoff, Connection, defaultServerUrl, describeClose, redact, socketUrl } from "../../server/web/connection.js";
import { LatencyMeter, RateMeter } from "../../server/web/display.js";
import { decimals, describeOptions, showValue, sliderStep } from "../../server/web/options.js";
import { decodeJson } from "../../server/web/protocol.js";
import { blobToBase64, parseIceLinks, whipUrl } from "../../server/web/webrtc.js";

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check("the default server is the page's own origin and path, ws or wss", () => {
  assert.equal(defaultServerUrl(new URL("http://box.lan:8765/")), "ws://box.lan:8765/");
  assert.equal(defaultServerUrl(new URL("https://example.org/face/?token=x")), "wss://example.org/face/");
  assert.equal(defaultServerUrl(new URL("file:///home/me/index.html")), "ws://localhost:8765/");
});

check("the token travels as a query parameter and is never displayed", () => {
  assert.equal(socketUrl("ws://h:1/", "a b&c"), "ws://h:1/?token=a+b%26c");
  assert.equal(socketUrl(" http://h:1/ ", ""), "ws://h:1/");
  assert.equal(socketUrl("https://h/?token=old", "new"), "wss://h/?token=new");
  assert.throws(() => socketUrl("ftp://h/", ""), /not a ws/);
  assert.equal(redact("ws://h:1/?token=s3cret"), "ws://h:1/?token=***");
});

check("close codes: 1001 and drops are retried, 1009 and 1008 explained and not", () => {
  assert.equal(describeClose(1001, "server shutting down").retry, true);
  assert.match(describeClose(1001, "server shutting down").text, /going away.*1001 \(server shutting down\)/);
  assert.equal(describeClose(1006, "").retry, true);
  assert.equal(describeClose(1009, "").retry, false);
  assert.match(describeClose(1009, "").text, /too big/);
  assert.equal(describeClose(1008, "").retry, false);
  assert.equal(describeClose(4321, "custom").retry, false);
});

check("backoff grows, caps, never reaches zero, and resets", () => {
  const lowest = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => lowest.nextDelay()), [50, 100, 200, 400, 500]);
  lowest.reset();
  assert.equal(lowest.nextDelay(), 50);
  const highest = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => highest.nextDelay()), [100, 200, 400, 800, 1000]);
});

// A WebSocket stand-in the test drives by hand.
class FakeSocket {
  static OPEN = 1;
  static made = [];
  constructor(url) {
    Object.assign(this, { url, readyState: 0, sent: [], closedWith: null });
    FakeSocket.made.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close(code) {
    this.closedWith = code;
  }
  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }
  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function connection() {
  FakeSocket.made = [];
  const states = [];
  const conn = new Connection({
    onOpen: () => states.push(["opened"]),
    onMessage: () => {},
    onState: (name, text) => states.push([name, text]),
    WebSocketImpl: FakeSocket,
    backoff: new Backoff({ initialMs: 1, maxMs: 2 }),
  });
  return { conn, states };
}

const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

check("a server going away (1001) is reconnected with backoff", async () => {
  const { conn, states } = connection();
  conn.open("ws://h/");
  FakeSocket.made[0].open();
  assert.ok(conn.isOpen && conn.send("x"));
  FakeSocket.made[0].drop(1001, "server shutting down");
  assert.equal(states.at(-1)[0], "reconnecting");
  assert.match(states.at(-1)[1], /going away.*Reconnecting in/);
  assert.ok(!conn.send("y"), "nothing is sent while disconnected");
  await tick(10);
  assert.equal(FakeSocket.made.length, 2);
  FakeSocket.made[1].drop(1006); // still down: keep trying
  await tick(10);
  assert.equal(FakeSocket.made.length, 3);
  FakeSocket.made[2].open();
  assert.equal(states.at(-1)[0], "opened");
  conn.close();
  assert.equal(FakeSocket.made[2].closedWith, 1000);
});

check("a first connection that never opens is not retried (wrong URL or token)", async () => {
  const { conn, states } = connection();
  conn.open("ws://h/?token=s3cret");
  FakeSocket.made[0].drop(1006);
  assert.equal(states.at(-1)[0], "closed");
  assert.match(states.at(-1)[1], /Could not connect to ws:\/\/h\/\?token=\*\*\*:.*token/);
  assert.doesNotMatch(states.map((s) => s[1]).join(" "), /s3cret/);
  await tick(10);
  assert.equal(FakeSocket.made.length, 1);
});

check("a message too big (1009) closes for good, with advice", async () => {
  const { conn, states } = connection();
  conn.open("ws://h/");
  FakeSocket.made[0].open();
  FakeSocket.made[0].drop(1009, "");
  assert.equal(states.at(-1)[0], "closed");
  assert.match(states.at(-1)[1], /too big.*send width/);
  await tick(10);
  assert.equal(FakeSocket.made.length, 1);
});

check("Disconnect stops a pending reconnect", async () => {
  const { conn } = connection();
  conn.open("ws://h/");
  FakeSocket.made[0].open();
  FakeSocket.made[0].drop(1001);
  conn.close();
  await tick(10);
  assert.equal(FakeSocket.made.length, 1);
});

check("a reconnect message reconnects at once, without a backoff step", async () => {
  const { conn, states } = connection();
  conn.open("ws://h/");
  FakeSocket.made[0].open();
  conn.backoff.attempts = 2; // earlier trouble: left as it is, neither reset nor grown
  conn.followReconnect(decodeJson('{"type":"reconnect","reason":"server draining","delay_ms":0}'));
  assert.equal(FakeSocket.made[0].closedWith, 1000);
  assert.equal(FakeSocket.made.length, 2, "the new socket is opened at once");
  assert.equal(conn.backoff.attempts, 2);
  assert.equal(states.at(-1)[0], "connecting");
  assert.match(states.at(-1)[1], /^Server asked to reconnect \(server draining\)\. Connecting to ws:\/\/h\//);
  FakeSocket.made[0].drop(1001); // the old socket's close arrives late: ignored
  assert.equal(FakeSocket.made.length, 2);
  FakeSocket.made[1].open();
  assert.equal(states.at(-1)[0], "opened");
  conn.close();
});

check("a reconnect that fails falls back to the backoff; a delay is waited for", async () => {
  const { conn, states } = connection();
  conn.backoff = new Backoff({ initialMs: 1, maxMs: 1000 }); // a cap above the delay asked for
  conn.open("ws://h/");
  FakeSocket.made[0].open();
  conn.followReconnect({ type: "reconnect", reason: "", delay_ms: 30 });
  assert.match(states.at(-1)[1], /no reason given.*Reconnecting in 0\.0 s/);
  await tick(5);
  assert.equal(FakeSocket.made.length, 1, "not before the delay asked for");
  await tick(60);
  assert.equal(FakeSocket.made.length, 2);
  FakeSocket.made[1].drop(1006); // the draining server refuses (browsers see 1006): back to the backoff
  assert.equal(states.at(-1)[0], "reconnecting");
  assert.match(states.at(-1)[1], /Reconnecting in/);
  await tick(10);
  assert.equal(FakeSocket.made.length, 3);
  conn.close();
});

check("meters: fps over the last second, latency last and median", () => {
  const rate = new RateMeter(1000);
  for (const t of [0, 100, 200, 300, 1150]) rate.tick(t);
  assert.equal(rate.rate(1150), 3); // 200, 300 and 1150 are within a second of 1150
  const latency = new LatencyMeter(3);
  assert.ok(Number.isNaN(latency.last) && Number.isNaN(latency.median));
  for (const ms of [50, -1, 10, 30, 20]) latency.add(ms); // -1: not ours to time
  assert.equal(latency.last, 20);
  assert.equal(latency.median, 20); // of the last three: 10, 30, 20
});

check("WHIP's URL is the server's, any scheme, a proxy's path prefix kept", () => {
  assert.equal(whipUrl("ws://h:8765/"), "http://h:8765/whip");
  assert.equal(whipUrl(" wss://example.org/face/?token=x "), "https://example.org/face/whip");
  assert.equal(whipUrl("https://example.org/face"), "https://example.org/face/whip");
  assert.throws(() => whipUrl("ftp://h/"), /not a ws/);
});

check("ICE servers from WHIP's Link headers, credentials with the TURN one", () => {
  const header =
    '<stun:stun.example.org:3478>; rel="ice-server", <turn:t.example.org:3478?transport=udp>; rel="ice-server"; ' +
    'username="alice"; credential="p;w"; credential-type="password", <https://x/>; rel="next"';
  assert.deepEqual(parseIceLinks(header), [
    { urls: "stun:stun.example.org:3478" },
    { urls: "turn:t.example.org:3478?transport=udp", username: "alice", credential: "p;w" },
  ]);
  assert.deepEqual(parseIceLinks(null), []);
});

check("a photo's base64 for the data channel is the bytes' base64", async () => {
  const bytes = new Uint8Array(70000).map((_, i) => (i * 7) % 256);
  assert.equal(await blobToBase64(new Blob([bytes])), Buffer.from(bytes).toString("base64"));
});

check("live options are shown as the Python client's overlay shows them, sliders in twentieths", () => {
  const table = [
    { name: "many_faces", label: "many faces", kind: "switch" },
    { name: "opacity", label: "opacity", kind: "number", low: 0, high: 1 },
    { name: "mouth_mask", label: "mouth", kind: "number", low: 0, high: 100 },
  ];
  assert.equal(describeOptions(table, { many_faces: false, opacity: 0.9, mouth_mask: 50, blend: "feather" }),
    "many faces off, opacity 0.9, mouth 50, blend feather");
  assert.equal(describeOptions(table, {}), "");
  assert.equal(showValue(0.1 + 0.2), "0.3");
  assert.deepEqual([showValue(["box", "occlusion"]), showValue([])], ["box+occlusion", "none"]);
  assert.deepEqual([sliderStep(table[1]), sliderStep(table[2])], [0.05, 5]);
  assert.deepEqual([decimals(0.05), decimals(5), decimals(0.5)], [2, 0, 1]);
});

let passed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    passed += 1;
  } catch (error) {
    console.error(`FAILED: ${name}\n${error.stack}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
}
console.log(`${passed} passed, 0 failed`);
