// Checks the page's JavaScript protocol code in Node, without a browser and without npm:
//   node tests/browser/protocol_vectors.mjs
// 1. server/web/protocol.js encodes and decodes every shared vector (tests/protocol/vectors.json,
//    written from the Python codec) byte for byte, and refuses the invalid ones with the same code;
// 2. server/web/flow.js keeps the in-flight window like client/flow.py;
// 3. it prints, as JSON on stdout, messages that JavaScript itself encoded from values it chose,
//    for the Python side (tests/browser/test_protocol_vectors.py) to decode.
// Exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { InFlightWindow } from "../../server/web/flow.js";
import * as protocol from "../../server/web/protocol.js";

const toHex = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
const fromHex = (hex) => new Uint8Array(Buffer.from(hex, "hex"));

function checkVectors(file) {
  assert.equal(file.header_size, protocol.HEADER_SIZE);
  assert.equal(file.version, protocol.VERSION);
  for (const v of file.vectors) {
    const encoded = protocol.encodeBinary({ ...v, paceMs: v.pace_ms }, fromHex(v.payload_hex));
    assert.equal(toHex(encoded), v.bytes_hex, `encode: ${v.note}`);
    // Decode from an offset view too: a WebSocket ArrayBuffer is whole, but subarrays must work.
    const padded = new Uint8Array(v.bytes_hex.length / 2 + 3);
    padded.set(fromHex(v.bytes_hex), 3);
    for (const input of [fromHex(v.bytes_hex).buffer, padded.subarray(3)]) {
      const m = protocol.decodeBinary(input);
      assert.equal(m.version, protocol.VERSION, v.note);
      assert.equal(m.kind, v.kind, v.note);
      assert.equal(m.flags, v.flags, v.note);
      assert.equal(m.seq, v.seq, v.note);
      assert.equal(m.paceMs, v.pace_ms, v.note);
      assert.ok(Object.is(m.timestamp, v.timestamp), `${v.note}: timestamp ${m.timestamp} != ${v.timestamp}`);
      assert.equal(toHex(m.payload), v.payload_hex, v.note);
    }
  }
  for (const bad of file.invalid) {
    assert.throws(
      () => protocol.decodeBinary(fromHex(bad.bytes_hex).buffer),
      (error) => error instanceof protocol.ProtocolError && error.code === bad.code,
      `invalid: ${bad.note} should raise ${bad.code}`,
    );
  }
  assert.throws(() => protocol.encodeHeader({ kind: 1, seq: 2 ** 32 }), RangeError);
  assert.throws(() => protocol.encodeHeader({ kind: 1, seq: -1 }), RangeError);
  assert.throws(() => protocol.encodeHeader({ kind: 1, seq: 1, timestamp: NaN }), RangeError);
  return file.vectors.length + file.invalid.length;
}

function checkJson() {
  assert.deepEqual(JSON.parse(protocol.statsRequest()), { type: "stats_request" });
  assert.deepEqual(JSON.parse(protocol.config({ opacity: 0.5 })), { type: "config", options: { opacity: 0.5 } });
  assert.deepEqual(protocol.decodeJson('{"type":"error","code":"no_face","message":"No face"}').code, "no_face");
  for (const [text, code] of [["{", "bad_json"], ["[1]", "bad_json"], ["null", "bad_json"], ['{"x":1}', "missing_field"]]) {
    assert.throws(() => protocol.decodeJson(text), (e) => e.code === code, text);
  }
}

function checkFlow() {
  // Mirrors tests/client/test_flow.py: superseded frames never stall the window.
  const w = new InFlightWindow({ limit: 2, timeoutMs: 1000 });
  assert.ok(w.canSend(0));
  assert.equal(w.sent(0), 1);
  assert.equal(w.sent(0), 2);
  assert.ok(!w.canSend(10));
  assert.ok(w.settle(2), "an answer to 2 settles 1 too (1 was superseded)");
  assert.equal(w.inFlight, 0);
  assert.ok(!w.settle(1), "a late answer settles nothing");
  assert.ok(!w.settle(99), "a seq never sent settles nothing");
  assert.ok(!w.settle(undefined));
  w.sent(20);
  w.sent(30);
  assert.ok(!w.canSend(1019));
  assert.ok(w.canSend(1020), "the oldest frame times out");
  assert.equal(w.timeouts, 1);
  assert.equal(w.inFlight, 1);
  assert.ok(w.canSend(1030));
  assert.equal(w.timeouts, 2);
  w.sent(1040);
  w.reset();
  assert.equal(w.inFlight, 0);
  assert.equal(w.nextSeq(), 6, "seq keeps growing across reconnects");
  assert.throws(() => new InFlightWindow({ limit: 0 }), RangeError);

  // Pacing, as in tests/client/test_flow.py: the next frame goes paceMs after the last sent.
  const p = new InFlightWindow({ limit: 2, timeoutMs: 5000, paceSlackMs: 10 });
  p.sent(0);
  assert.ok(p.canSend(5), "no pace yet: the window alone decides");
  assert.ok(p.settle(1, 300));
  assert.ok(!p.canSend(100) && !p.canSend(289), "held back until the server's turn");
  assert.ok(p.canSend(290), "within the slack of it");
  p.sent(300);
  assert.ok(!p.canSend(500), "the last pace spaces the next frame too, before any answer");
  assert.ok(p.canSend(595));
  p.reset();
  assert.ok(p.canSend(596), "a new connection paces afresh");
}

function encodeForPython() {
  // Values chosen here, in JavaScript, as the page would: performance.now() and Date.now().
  const now = performance.now();
  const out = [];
  const cases = [
    [protocol.Kind.FRAME, 0, 1, now],
    [protocol.Kind.FRAME, 0, 123456789, Date.now()],
    [protocol.Kind.FRAME, 3, 0xfffffffe, now + 0.125],
    [protocol.Kind.PROCESSED_FRAME, 0, 99, 1e-3],
    [protocol.Kind.PROCESSED_FRAME, protocol.PACED, 100, now, 1234],
    [protocol.Kind.SOURCE_FACE, 0, 0, 0],
  ];
  for (const [kind, flags, seq, timestamp, paceMs = null] of cases) {
    const payload = new TextEncoder().encode(`payload of seq ${seq}`);
    const bytes = protocol.encodeBinary({ kind, flags, seq, timestamp, paceMs }, payload);
    out.push({ kind, flags, seq, timestamp, pace_ms: paceMs, payload_hex: toHex(payload), bytes_hex: toHex(bytes) });
  }
  return out;
}

const vectorsUrl = new URL("../protocol/vectors.json", import.meta.url);
const checked = checkVectors(JSON.parse(readFileSync(vectorsUrl, "utf8")));
checkJson();
checkFlow();
process.stdout.write(
  JSON.stringify({
    checked,
    header_size: protocol.HEADER_SIZE,
    version: protocol.VERSION,
    kinds: protocol.Kind,
    paced_flag: protocol.PACED,
    pacing: protocol.PACING,
    error_codes: Object.values(protocol.ErrorCode),
    js_encoded: encodeForPython(),
  }) + "\n",
);
