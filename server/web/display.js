// Showing processed frames, and the numbers about them (fps, round-trip latency).

/**
 * Draws JPEG frames onto a canvas in seq order. Decoding is asynchronous, so a slow decode
 * could finish after a newer frame's: a frame older than the one on screen is dropped
 * rather than drawn (the picture never jumps back in time).
 */
export class FrameView {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d", { alpha: false });
    this.shownSeq = -1;
    this.shown = 0;
  }

  /** Decode and draw; resolves true when the frame made it to the screen. */
  async show(jpegBytes, seq) {
    const image = await decodeJpeg(new Blob([jpegBytes], { type: "image/jpeg" }));
    try {
      if (seq <= this.shownSeq) return false;
      this.shownSeq = seq;
      if (this.canvas.width !== image.width || this.canvas.height !== image.height) {
        this.canvas.width = image.width;
        this.canvas.height = image.height;
      }
      this.context.drawImage(image, 0, 0);
      this.shown += 1;
      return true;
    } finally {
      image.close?.();
    }
  }
}

/** createImageBitmap where it exists (off the main thread); an <img> with a revoked object URL otherwise. */
async function decodeJpeg(blob) {
  if (typeof createImageBitmap === "function") return createImageBitmap(blob);
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url); // one URL per frame would otherwise leak a frame's memory each time
  }
}

/** Events per second over the last `windowMs`. */
export class RateMeter {
  constructor(windowMs = 1000) {
    this.windowMs = windowMs;
    this.times = [];
  }

  tick(now) {
    this.times.push(now);
    this.#trim(now);
  }

  rate(now) {
    this.#trim(now);
    return (this.times.length * 1000) / this.windowMs;
  }

  #trim(now) {
    while (this.times.length && now - this.times[0] > this.windowMs) this.times.shift();
  }
}

/** Round trips in ms (now minus the frame's echoed capture time): the last and the recent median. */
export class LatencyMeter {
  constructor(size = 60) {
    this.size = size;
    this.samples = [];
  }

  add(ms) {
    if (!(ms >= 0)) return; // an echo that is not ours to time (e.g. from before a reload)
    this.samples.push(ms);
    if (this.samples.length > this.size) this.samples.shift();
  }

  get last() {
    return this.samples.at(-1) ?? NaN;
  }

  get median() {
    if (!this.samples.length) return NaN;
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  }

  reset() {
    this.samples = [];
  }
}
