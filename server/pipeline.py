"""One batch's trip through a worker thread: decode -> processors -> encode.

Runs off the event loop. Decode and encode fan out over a codec thread pool (libjpeg-turbo
releases the GIL); the processors run under the device lock so that one device executes
one batch at a time while the next batch is already being decoded.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import cv2
import numpy as np

from models.analysis import NoFaceError
from models.processors import MappedFace
from protocol import ErrorCode, FacePair, ProtocolError

from .jpeg import JpegCodec
from .limits import check_source_size
from .processors import FrameContext, FrameProcessor

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FrameWork:
    """One frame in a batch; exactly one of `result` / `error` is set when the batch returns."""

    jpeg: bytes
    seq: int | None
    context: FrameContext
    result: bytes | None = None
    error: ProtocolError | None = None


@dataclass(frozen=True)
class BatchTimings:
    decode_s: float
    process_s: float
    encode_s: float

    @property
    def total_s(self) -> float:
        return self.decode_s + self.process_s + self.encode_s


@dataclass
class Pipeline:
    processors: Sequence[FrameProcessor]
    codec: JpegCodec
    codec_pool: Executor
    device_lock: threading.Lock

    def _fan_out(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) == 1:
            return [function(items[0])]
        return list(self.codec_pool.map(function, items))

    def _decode(self, work: FrameWork) -> np.ndarray | None:
        try:
            image = self.codec.decode(work.jpeg, work.seq)
        except ProtocolError as exc:
            work.error = exc
            return None
        return cv2.flip(image, 1) if work.context.options.get("mirror") else image

    def _apply_processors(self, images: list[np.ndarray], contexts: list[FrameContext]) -> list[np.ndarray]:
        for processor in self.processors:
            images = processor.process(images, contexts)
            if len(images) != len(contexts):
                raise RuntimeError(f"processor {processor.name} returned {len(images)} frames for {len(contexts)}")
        return images

    def _process_isolating_failures(self, works: list[FrameWork], images: list[np.ndarray]) -> list[np.ndarray | None]:
        """Run the batch once; if it raises, rerun frame by frame so only the culprit fails."""
        contexts = [work.context for work in works]
        try:
            return list(self._apply_processors(images, contexts))
        except Exception:
            if len(works) == 1:
                log.exception("frame processing failed (client %s)", works[0].context.client_id)
                works[0].error = ProtocolError(ErrorCode.PROCESSING_FAILED, "the server failed to process this frame", works[0].seq)
                return [None]
            log.warning("batch of %d failed; retrying its frames one by one", len(works), exc_info=True)
        outputs: list[np.ndarray | None] = []
        for work in works:  # decoded afresh: the failed run may have painted on some frames already
            fresh = self._decode(work)
            outputs.extend(self._process_isolating_failures([work], [fresh]) if fresh is not None else [None])
        return outputs

    def run(self, works: list[FrameWork]) -> BatchTimings:
        """Fill in `result` or `error` of every frame; never raises for a bad frame."""
        start = time.perf_counter()
        images = self._fan_out(self._decode, works)
        decoded = [(work, image) for work, image in zip(works, images) if image is not None]
        after_decode = time.perf_counter()
        outputs: list[np.ndarray | None] = []
        locked_at = after_decode
        if decoded:
            with self.device_lock:
                locked_at = time.perf_counter()  # waiting for the previous batch is not processing
                outputs = self._process_isolating_failures([w for w, _ in decoded], [i for _, i in decoded])
        after_process = time.perf_counter()
        to_encode = [(work, image) for (work, _), image in zip(decoded, outputs) if image is not None]
        for (work, _), jpeg in zip(to_encode, self._fan_out(lambda pair: self.codec.encode(pair[1]), to_encode)):
            work.result = jpeg
        end = time.perf_counter()
        return BatchTimings(after_decode - start, after_process - locked_at, end - after_process)

    def prepare_face_map(self, pairs: Sequence[FacePair], max_bytes: int) -> list[MappedFace | ProtocolError]:
        """Each pair's sources and its target person's embedding, computed once (off the loop)."""
        identifiers = [p for p in self.processors if getattr(p, "can_identify", False)]
        if not identifiers:
            raise ProtocolError(ErrorCode.UNSUPPORTED,
                                "face maps need a face swapper with a face recognizer, which this server does not run")
        results: list[MappedFace | ProtocolError] = []
        for pair in pairs:
            try:
                check_source_size(pair.source, max_bytes)
                check_source_size(pair.target, max_bytes)
                sources = self.prepare_sources(pair.source)
                target = self.codec.decode_any(pair.target)
                with self.device_lock:
                    embedding = identifiers[0].identify(target)
                results.append(MappedFace(embedding=embedding, sources=sources))
            except NoFaceError as exc:
                results.append(ProtocolError(ErrorCode.NO_FACE, f"target photo: {exc}"))
            except ProtocolError as exc:
                results.append(exc)
        return results

    def prepare_sources(self, image_data: bytes) -> dict[str, object]:
        """Decode a client's source photo and let every processor prepare it (off the loop)."""
        image = self.codec.decode_any(image_data)
        try:
            with self.device_lock:
                return {processor.name: processor.prepare_source(image) for processor in self.processors}
        except NoFaceError as exc:
            raise ProtocolError(ErrorCode.NO_FACE, str(exc)) from None
