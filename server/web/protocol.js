// facestream wire protocol for the browser (and Node): the JavaScript twin of the Python
// package `protocol/` (binary_codec.py, json_codec.py, errors.py). docs/protocol.md is the
// contract; tests/protocol/vectors.json pins the binary layout for both languages.
//
// Binary message: a 16-byte little-endian header, then the image bytes.
//   offset 0 u8 version (1) | 1 u8 kind | 2 u16 flags | 4 u32 seq | 8 f64 timestamp
// (Python struct format "<BBHId".) On a paced connection a processed_frame may set flag
// PACED: a u32 pace_ms then sits between the header and the image.

export const VERSION = 1;
export const HEADER_SIZE = 16;
export const MAX_SEQ = 0xffffffff;
export const PACED = 0x0001; // flag of a processed_frame: pace_ms follows the header
export const PACE_SIZE = 4;
// The WebSocket subprotocol that asks the server to pace this client (docs/protocol.md, "Pacing").
export const PACING = "facestream.pacing";

export const Kind = Object.freeze({
  FRAME: 1, // client -> server: a camera frame (JPEG)
  PROCESSED_FRAME: 2, // server -> client: the answer, echoing seq and timestamp
  SOURCE_FACE: 3, // client -> server: the face to wear (JPEG or PNG)
});

// Every machine code the server may send in an `error` message (protocol/errors.py).
export const ErrorCode = Object.freeze({
  BAD_JSON: "bad_json",
  UNKNOWN_TYPE: "unknown_type",
  MISSING_FIELD: "missing_field",
  INVALID_FIELD: "invalid_field",
  INVALID_BASE64: "invalid_base64",
  BAD_HEADER: "bad_header",
  UNSUPPORTED_VERSION: "unsupported_version",
  BAD_IMAGE: "bad_image",
  IMAGE_TOO_LARGE: "image_too_large",
  NO_FACE: "no_face",
  PROCESSING_FAILED: "processing_failed",
  UNEXPECTED_MESSAGE: "unexpected_message",
  BAD_CONFIG: "bad_config",
  UNSUPPORTED: "unsupported",
  RATE_LIMITED: "rate_limited",
});

export class ProtocolError extends Error {
  constructor(code, message, seq = null) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
    this.seq = seq;
  }
}

/** The 16-byte header as an ArrayBuffer. */
export function encodeHeader({ kind, seq = 0, timestamp = 0, flags = 0 }) {
  if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) {
    throw new RangeError(`seq ${seq} does not fit in u32`);
  }
  if (!Number.isFinite(timestamp)) throw new RangeError(`timestamp ${timestamp} is not a finite number`);
  const header = new ArrayBuffer(HEADER_SIZE);
  const view = new DataView(header);
  view.setUint8(0, VERSION);
  view.setUint8(1, kind);
  view.setUint16(2, flags, true);
  view.setUint32(4, seq, true);
  view.setFloat64(8, timestamp, true);
  return header;
}

/**
 * Header + payload in one Uint8Array (a browser can instead send `new Blob([header, jpegBlob])`).
 * A `paceMs` (processed_frame, as a paced server writes it) sets flag PACED and goes before the payload.
 */
export function encodeBinary(fields, payload) {
  const paced = fields.paceMs !== undefined && fields.paceMs !== null;
  const start = HEADER_SIZE + (paced ? PACE_SIZE : 0);
  const bytes = new Uint8Array(start + payload.byteLength);
  bytes.set(new Uint8Array(encodeHeader(paced ? { ...fields, flags: (fields.flags ?? 0) | PACED } : fields)), 0);
  if (paced) new DataView(bytes.buffer).setUint32(HEADER_SIZE, fields.paceMs, true);
  bytes.set(payload instanceof Uint8Array ? payload : new Uint8Array(payload), start);
  return bytes;
}

/**
 * Parse a binary message (ArrayBuffer or a typed array view) into
 * {version, kind, flags, seq, timestamp, paceMs, payload}; `payload` is a view, not a copy, and
 * `paceMs` is null unless the message is a paced processed_frame.
 * Throws ProtocolError like the Python decoder, checking in the same order: short -> bad_header,
 * version -> unsupported_version, NaN/infinite timestamp -> invalid_field, kind -> bad_header.
 */
export function decodeBinary(data) {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength < HEADER_SIZE) {
    throw new ProtocolError(ErrorCode.BAD_HEADER, `binary message shorter than the ${HEADER_SIZE}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const version = view.getUint8(0);
  const kind = view.getUint8(1);
  const flags = view.getUint16(2, true);
  const seq = view.getUint32(4, true);
  const timestamp = view.getFloat64(8, true);
  if (version !== VERSION) {
    throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `binary version ${version} (this page speaks ${VERSION})`, seq);
  }
  if (!Number.isFinite(timestamp)) {
    throw new ProtocolError(ErrorCode.INVALID_FIELD, "timestamp must be a finite number", seq);
  }
  if (!Object.values(Kind).includes(kind)) {
    throw new ProtocolError(ErrorCode.BAD_HEADER, `unknown binary kind ${kind}`, seq);
  }
  if (kind !== Kind.PROCESSED_FRAME || !(flags & PACED)) {
    return { version, kind, flags, seq, timestamp, paceMs: null, payload: bytes.subarray(HEADER_SIZE) };
  }
  if (bytes.byteLength < HEADER_SIZE + PACE_SIZE) {
    throw new ProtocolError(ErrorCode.BAD_HEADER, "paced processed_frame shorter than its pace field", seq);
  }
  const paceMs = new DataView(bytes.buffer, bytes.byteOffset + HEADER_SIZE, PACE_SIZE).getUint32(0, true);
  return { version, kind, flags, seq, timestamp, paceMs, payload: bytes.subarray(HEADER_SIZE + PACE_SIZE) };
}

// ---- JSON control messages ------------------------------------------------------------

/** Serialize a control message: encodeJson("config", {options: {...}}). */
export function encodeJson(type, fields = {}) {
  return JSON.stringify({ type, ...fields });
}

/** Parse a text message from the server; it must be an object with a string `type`. */
export function decodeJson(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch (error) {
    throw new ProtocolError(ErrorCode.BAD_JSON, `message is not valid JSON: ${error.message}`);
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    throw new ProtocolError(ErrorCode.BAD_JSON, "message must be a JSON object");
  }
  if (typeof message.type !== "string") {
    throw new ProtocolError(ErrorCode.MISSING_FIELD, "message needs a 'type'");
  }
  return message;
}

export const statsRequest = () => encodeJson("stats_request");
export const ping = () => encodeJson("ping");
export const config = (options) => encodeJson("config", { options });
