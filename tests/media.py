"""Real images for tests: the sample photos that installed packages ship (no downloads)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from perf import frames as perf_frames
from perf.frames import package_dir


def insightface_image(name: str) -> Path:
    return package_dir("insightface") / "data" / "images" / name


@lru_cache(maxsize=None)
def group_photo(width: int = 640, height: int = 480) -> np.ndarray:
    """insightface's t1.jpg (six real faces), resized to a camera frame size."""
    image = cv2.imread(str(insightface_image("t1.jpg")))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable image"
    return image


def numbered_frame(index: int, width: int = 640, height: int = 480) -> np.ndarray:
    """The group photo with a frame number drawn in, so each frame differs (and can be read back)."""
    image = group_photo(width, height).copy()
    cv2.rectangle(image, (0, 0), (60, 20), (0, 0, 0), -1)
    cv2.putText(image, str(index), (2, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return image


def region_changes(original: np.ndarray, output: np.ndarray, boxes: list[np.ndarray]) -> tuple[list[float], float]:
    """Mean absolute change inside each face box, and outside all (generously grown) boxes."""
    diff = np.abs(original.astype(np.int16) - output.astype(np.int16)).mean(axis=2)
    background = np.ones(diff.shape, bool)
    inner = []
    for x1, y1, x2, y2 in boxes:
        w, h = x2 - x1, y2 - y1
        inner.append(float(diff[int(y1 + h / 4):int(y2 - h / 4), int(x1 + w / 4):int(x2 - w / 4)].mean()))
        background[max(0, int(y1 - h)):int(y2 + h), max(0, int(x1 - w)):int(x2 + w)] = False
    return inner, float(diff[background].mean())


def write_video(path: Path, frames: int, width: int = 640, height: int = 480, fps: float = 30.0) -> Path:
    """An mp4 of numbered real-face frames (the group photo), for clients to stream."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for index in range(frames):
        writer.write(numbered_frame(index, width, height))
    writer.release()
    return path


def forged_size_jpeg(width: int, height: int) -> bytes:
    """A tiny real JPEG whose header claims `width` x `height`: the "small file, huge image" attack.

    The SOF0 marker's height and width are rewritten; the entropy-coded data stays that of a
    16x16 image, so a decoder that trusts the header fills the rest with grey."""
    data = bytearray(jpeg(np.full((16, 16, 3), 128, np.uint8), 50))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def cmyk_jpeg(image: np.ndarray) -> bytes:
    """`image` (BGR) as a CMYK JPEG, as print workflows and some scanners write them."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).convert("CMYK").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def flat_photo(width: int, height: int) -> bytes:
    """A valid JPEG of a smooth gradient and no face: large in pixels, small in bytes."""
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    image = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)
    return jpeg(image, 30)


BARCODE_BITS = 10
BARCODE_CELL = 12  # px: big enough to survive H.264 at the default quality


def barcoded_frame(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """The group photo with `index` written as a row of black and white cells along the
    bottom edge, away from the faces, to be read back after a round trip through a codec."""
    image = group_photo(width, height).copy()
    for bit in range(BARCODE_BITS):
        value = 255 if index >> bit & 1 else 0
        image[height - BARCODE_CELL:, bit * BARCODE_CELL:(bit + 1) * BARCODE_CELL] = value
    return image


def read_barcode(image: np.ndarray) -> int:
    height = image.shape[0]
    cells = [image[height - BARCODE_CELL + 3:height - 3, bit * BARCODE_CELL + 3:(bit + 1) * BARCODE_CELL - 3].mean()
             for bit in range(BARCODE_BITS)]
    return sum(1 << bit for bit, level in enumerate(cells) if level > 128)


def write_clip(path: Path, frame_times_s: list[float], width: int = 320, height: int = 240,
               audio_s: float = 0.0, audio_codec: str = "aac") -> Path:
    """A clip of barcoded real-face frames at exactly these times (any spacing: a variable
    frame rate), with `audio_s` seconds of a 440 Hz tone (48 kHz mono) when asked."""
    frames = (barcoded_frame(index, width, height) for index in range(len(frame_times_s)))
    return perf_frames.write_clip(path, frames, frame_times_s, audio_s, audio_codec)


def clip_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def clip_contents(path: Path) -> tuple[list[int], list[float], np.ndarray]:
    """A clip's frame barcodes and times (s), and its first audio stream's samples (empty if none)."""
    import av

    with av.open(str(path)) as container:
        frames = [(read_barcode(frame.to_ndarray(format="bgr24")), round(float(frame.time), 4))
                  for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)] if container.streams.audio else []
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    return [code for code, _ in frames], [at for _, at in frames], audio
