"""Glass-to-glass latency in Chromium, the page over WebRTC against the page over WebSocket,
side by side in one run (the transports alternate round by round).

    .venv/bin/python perf/browser_latency.py                      # passthrough: the transports alone
    .venv/bin/python perf/browser_latency.py --processor classic  # with the real swap
    .venv/bin/python perf/browser_latency.py --seconds 10 --repeat 3

Chromium's fake camera plays a 640x480, 30 fps clip of six real faces whose frames carry
their index as a barcode (top left). In the page, once per animation frame, the barcode is
read from the camera preview and from the output (the canvas for WebSocket, the <video>
for WebRTC), both the same way: the latency of a frame is the time its index first shows
in the output minus the time it first showed in the preview. Both are quantised to the
page's 60 Hz refresh, alike for both transports. Headless Chromium on this machine's two
cores, beside the server: the numbers compare the transports; they are not a phone's.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from perf.frames import fit, photo, source_face  # noqa: E402
from perf.spawn import spawned_server  # noqa: E402
from perf.chromium import ensure_chromium, launch, write_y4m  # noqa: E402

FPS = 30
LOOP_FRAMES = 90  # a 3 s loop: no latency comes near it, so an index is never ambiguous
BITS, CELL = 10, 24
WARM_UP_S = 4.0
TIMEOUT_MS = 60_000

MEASURE = """async ([seconds, bits, cell]) => {
  const canvas = Object.assign(document.createElement("canvas"), { width: bits * cell, height: cell });
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const read = (source) => {
    context.drawImage(source, 0, 0, bits * cell, cell, 0, 0, bits * cell, cell);
    const pixels = context.getImageData(0, 0, bits * cell, cell).data;
    let index = 0;
    for (let bit = 0; bit < bits; bit++) {
      const at = ((cell >> 1) * bits * cell + bit * cell + (cell >> 1)) * 4;
      if (pixels[at + 1] > 128) index |= 1 << bit;
    }
    return index;
  };
  const camera = document.getElementById("camera");
  const webrtc = facestream.connection.carriesCamera;
  const output = document.getElementById(webrtc ? "output-video" : "output");
  const seenInCamera = new Map();
  const latencies = [];
  let lastCamera = -1, lastOutput = -1;
  const end = performance.now() + seconds * 1000;
  await new Promise((done) => {
    const tick = (now) => {
      const inCamera = read(camera);
      if (inCamera !== lastCamera) seenInCamera.set((lastCamera = inCamera), now);
      const inOutput = read(output);
      if (inOutput !== lastOutput) {
        lastOutput = inOutput;
        const shown = seenInCamera.get(inOutput);
        if (shown !== undefined && now - shown < 1500) latencies.push(now - shown);
      }
      if (now < end) requestAnimationFrame(tick);
      else done();
    };
    requestAnimationFrame(tick);
  });
  return latencies;
}"""


def camera_clip(path: Path) -> Path:
    scene = fit(photo("group"), 640, 480)
    frames = []
    for index in range(LOOP_FRAMES):
        image = scene.copy()
        for bit in range(BITS):
            image[:CELL, bit * CELL:(bit + 1) * CELL] = 255 if index >> bit & 1 else 0
        frames.append(image)
    return write_y4m(path, frames, FPS)


async def measure(page, url: str, transport: str, face: Path, seconds: float) -> list[float]:
    from playwright.async_api import expect

    await page.goto(f"{url}?transport={transport}")
    await page.set_input_files("#face-file", str(face))
    await page.click("#connect")
    await expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    await expect(page.locator("#face-status")).to_contain_text("Source face set", timeout=TIMEOUT_MS)
    await page.wait_for_timeout(WARM_UP_S * 1000)
    latencies = await page.evaluate(MEASURE, [seconds, BITS, CELL])
    await page.click("#disconnect")
    await page.wait_for_timeout(1000)
    return latencies


async def main(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    chromium = ensure_chromium()
    results: dict[str, list[float]] = {"websocket": [], "webrtc": []}
    with tempfile.TemporaryDirectory(prefix="facestream-latency-") as scratch:
        folder = Path(scratch)
        clip = camera_clip(folder / "camera.y4m")
        face = folder / "face.jpg"
        face.write_bytes(source_face(0)[1])
        async with spawned_server(["--frame-processor", args.processor]) as server, async_playwright() as pw:
            context = await launch(pw, chromium, clip, folder / "profile")
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                for round_ in range(args.repeat):
                    order = ("websocket", "webrtc") if round_ % 2 == 0 else ("webrtc", "websocket")
                    for transport in order:
                        latencies = await measure(page, server.http_url + "/", transport, face, args.seconds)
                        results[transport] += latencies
                        median = statistics.median(latencies) if latencies else float("nan")
                        print(f"round {round_ + 1} {transport:9}: {len(latencies)} frames, "
                              f"median {median:.0f} ms", flush=True)
            finally:
                await context.close()
    summary: dict[str, object] = {"processor": args.processor, "seconds": args.seconds, "repeat": args.repeat}
    for transport, latencies in results.items():
        values = np.array(latencies)
        summary[transport] = {"frames": len(values), **({
            "p50_ms": round(float(np.percentile(values, 50)), 1),
            "p90_ms": round(float(np.percentile(values, 90)), 1),
            "p99_ms": round(float(np.percentile(values, 99)), 1),
        } if len(values) else {})}
    if results["websocket"] and results["webrtc"]:
        summary["webrtc_minus_websocket_p50_ms"] = round(
            statistics.median(results["webrtc"]) - statistics.median(results["websocket"]), 1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--processor", default="passthrough", help="the server's --frame-processor")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (the order alternates)")
    asyncio.run(main(parser.parse_args()))
