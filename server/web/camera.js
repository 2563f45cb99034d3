// Camera access and JPEG encoding of video frames and photos, in the browser.

/** Why the camera cannot work on this page, or null when it can. */
export function cameraUnsupportedReason() {
  if (!window.isSecureContext) {
    // Browsers expose getUserMedia only to https:// pages and http://localhost.
    return `The camera needs a secure page: open this page over https:// or on localhost (it is ${location.origin}).`;
  }
  if (!navigator.mediaDevices?.getUserMedia) return "This browser has no camera access (getUserMedia).";
  return null;
}

/** A sentence for a getUserMedia failure the user can act on. */
export function describeCameraError(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera permission was denied: allow the camera in the browser's site settings, then press Start camera.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera found (or the chosen one is gone): plug one in or pick another.";
    case "NotReadableError":
    case "AbortError":
      return "The camera is busy: another program or tab may be using it.";
    default:
      return `The camera could not start: ${error?.message ?? error}`;
  }
}

/** Video inputs as [{deviceId, label}]; labels are empty until the user granted access once. */
export async function listCameras() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices
    .filter((device) => device.kind === "videoinput")
    .map((device, index) => ({ deviceId: device.deviceId, label: device.label || `Camera ${index + 1}` }));
}

/** Open a camera into `video` (stopping the previous stream); resolves once frames play. */
export async function openCamera(video, deviceId) {
  stopCamera(video);
  const constraints = {
    audio: false,
    video: {
      width: { ideal: 640 },
      height: { ideal: 480 },
      // A phone opens its selfie camera unless the user picked one.
      ...(deviceId ? { deviceId: { exact: deviceId } } : { facingMode: "user" }),
    },
  };
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function stopCamera(video) {
  const stream = video.srcObject;
  if (stream) for (const track of stream.getTracks()) track.stop();
  video.srcObject = null;
}

export function activeDeviceId(video) {
  return video.srcObject?.getVideoTracks()[0]?.getSettings().deviceId ?? "";
}

/**
 * Draws an image source into a reused canvas, scaled to at most `maxWidth` (and `maxPixels`),
 * and encodes it as a JPEG Blob. OffscreenCanvas where available (no layout, no DOM),
 * else a detached <canvas> with toBlob.
 */
export class JpegEncoder {
  constructor() {
    this.canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(1, 1) : document.createElement("canvas");
    this.context = this.canvas.getContext("2d", { alpha: false });
  }

  async encode(source, { width, height, maxWidth = 640, maxPixels = Infinity, quality = 0.8 }) {
    const scale = Math.min(1, maxWidth / width, Math.sqrt(maxPixels / (width * height)));
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.context.drawImage(source, 0, 0, w, h);
    if (this.canvas.convertToBlob) return this.canvas.convertToBlob({ type: "image/jpeg", quality });
    return new Promise((resolve, reject) =>
      this.canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("JPEG encoding failed"))), "image/jpeg", quality),
    );
  }
}

const SOURCE_MAX_SIDE = 2048; // well under the server's 3840x2160 limit, plenty for a face

/**
 * A photo file as a JPEG Blob ready to send as the source face. Always re-encoded: that
 * applies the EXIF rotation of phone photos (the server reads raw pixels), shrinks 12 MP
 * pictures below the server's pixel limit, and turns HEIC/WebP/GIF into a JPEG it reads.
 */
export async function photoToJpeg(file, encoder = new JpegEncoder()) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    throw new Error(`"${file.name}" is not an image this browser can read.`);
  }
  try {
    const { width, height } = bitmap;
    return await encoder.encode(bitmap, {
      width,
      height,
      maxWidth: SOURCE_MAX_SIDE,
      maxPixels: SOURCE_MAX_SIDE * SOURCE_MAX_SIDE * 0.75,
      quality: 0.92,
    });
  } finally {
    bitmap.close();
  }
}
