"""One batch's trip through a worker thread: decode -> frame options (mirror) -> processors -> encode.

Runs off the event loop. Decode, encode and the processors' per-frame host work fan out
over the host pool (libjpeg-turbo, OpenCV and NumPy release the GIL); model calls queue
for the device (`models.device`), so only they wait for other batches. The batch's
`WorkAccount` collects what it cost: device time, and CPU time per host stage.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from models.analysis import NoFaceError, frames_finished
from models.frame import FrameContext, FrameProcessor, MappedFace, apply_frame_options
from models.host import HostPool
from models.work import WorkAccount, working_on
from protocol import ErrorCode, FacePair, ProtocolError

from .errors import reported
from .jpeg import JpegCodec
from .limits import check_source_size

log = logging.getLogger(__name__)


Pixels = Callable[[], np.ndarray]  # a frame a transport decoded itself: its BGR pixels, made on a host thread
Encoder = Callable[[np.ndarray], object]  # the result in a transport's own form, made on a host thread


@dataclass
class BatchItem:
    """One frame in a batch; exactly one of `result` / `error` is set when the batch returns.

    A frame comes as JPEG bytes (WebSocket), or already decoded by its transport's video
    codec (WebRTC), and its result goes back JPEG-encoded or in the form the transport's
    encoder takes: both conversions run on the host pool with the rest of the batch's
    host work, never on the event loop."""

    jpeg: bytes
    seq: int | None
    context: FrameContext
    received_at: float = 0.0  # when the frame arrived (time.monotonic())
    pixels: Pixels | None = None  # set: the frame came decoded, `jpeg` is empty
    encode: Encoder | None = None  # None: the result is JPEG bytes
    result: object | None = None
    error: ProtocolError | None = None


@dataclass(frozen=True)
class BatchTimings:
    """Seconds of one batch: wall time from start to results, model time on the device (and
    waiting for it), and CPU time per host stage, summed over the threads that did it."""

    wall_s: float
    device_s: float
    device_wait_s: float
    host_cpu_s: dict[str, float]


@dataclass
class Pipeline:
    processors: Sequence[FrameProcessor]
    codec: JpegCodec
    host: HostPool

    def option_choices(self) -> dict[str, dict[str, str]]:
        """What this pipeline's processors offer the live options that choose among loaded
        things (protocol/options.py's `server_choices`: `swapper`, ...): each processor's
        `option_choices` (choices, or choices with a note each: the model's licence), in
        processor order."""
        offered: dict[str, dict[str, str]] = {}
        for processor in self.processors:
            for name, choices in getattr(processor, "option_choices", {}).items():
                notes = choices if isinstance(choices, Mapping) else dict.fromkeys(choices, "")
                for choice, note in notes.items():
                    offered.setdefault(name, {}).setdefault(choice, note)
        return offered

    def options_read(self) -> set[str]:
        """The live options only some processors read (protocol/options.py's `read_by`) that
        this pipeline's do: the server offers those and not the others."""
        return {name for processor in self.processors for name in getattr(processor, "options_read", ())}

    def _decode(self, work: BatchItem) -> np.ndarray | None:
        try:
            if work.pixels is None:
                image = self.codec.decode(work.jpeg, work.seq)
            else:
                image = work.pixels()
                self.codec.check_size(image.shape[1], image.shape[0], work.seq)
        except ProtocolError as exc:
            work.error = exc
            return None
        return image

    def _apply_processors(self, images: list[np.ndarray], contexts: list[FrameContext]) -> list[np.ndarray]:
        images = apply_frame_options(images, contexts, self.host)  # mirror
        for processor in self.processors:
            images = processor.process(images, contexts)
            if len(images) != len(contexts):
                raise RuntimeError(f"processor {processor.name} returned {len(images)} frames for {len(contexts)}")
        return images

    def _process_isolating_failures(self, works: list[BatchItem], images: list[np.ndarray]) -> list[np.ndarray | None]:
        """Run the batch once; if it raises, rerun frame by frame so only the culprit fails."""
        contexts = [work.context for work in works]
        try:
            return list(self._apply_processors(images, contexts))
        except Exception as exc:
            if len(works) == 1:
                works[0].error = reported(exc, "frame", works[0].context.client_id, works[0].seq)
                return [None]
            log.warning("batch of %d failed; retrying its frames one by one", len(works), exc_info=True)
        outputs: list[np.ndarray | None] = []
        for work in works:  # decoded afresh: the failed run may have painted on some frames already
            fresh = self._decode(work)
            outputs.extend(self._process_isolating_failures([work], [fresh]) if fresh is not None else [None])
        return outputs

    def run(self, works: list[BatchItem], account: WorkAccount, on_processed: Callable[[], None] = lambda: None) -> BatchTimings:
        """Fill in `result` or `error` of every frame; never raises for a bad frame.

        `on_processed` is called (from this worker thread) when only encoding is left."""
        start = time.perf_counter()
        with working_on(account):
            try:
                images = self.host.map("decode", self._decode, works)
                decoded = [(work, image) for work, image in zip(works, images) if image is not None]
                outputs = self._process_isolating_failures([w for w, _ in decoded], [i for _, i in decoded]) if decoded else []
            finally:
                frames_finished([work.context for work in works])  # their clients' next frames may be analysed
                account.processed_at = time.monotonic()
                on_processed()
            to_encode = [(work, image) for (work, _), image in zip(decoded, outputs) if image is not None]
            for (work, _), result in zip(to_encode, self.host.map("encode", self._encode, to_encode)):
                work.result = result
        return BatchTimings(time.perf_counter() - start, account.device_s, account.wait_s, dict(account.host_cpu_s))

    def _encode(self, pair: tuple[BatchItem, np.ndarray]) -> object:
        work, image = pair
        return self.codec.encode(image) if work.encode is None else work.encode(image)

    def prepare_pair(self, pair: FacePair, max_bytes: int) -> MappedFace | ProtocolError:
        """One face map pair: its sources and its target person's embedding, computed once (off
        the loop). A pair at a time, so other clients' photos are prepared in between."""
        identifiers = [p for p in self.processors if getattr(p, "can_identify", False)]
        if not identifiers:
            raise ProtocolError(ErrorCode.UNSUPPORTED,
                                "face maps need a face swapper with a face recognizer, which this server does not run")
        try:
            check_source_size(pair.source, max_bytes)
            check_source_size(pair.target, max_bytes)
            sources = self.prepare_sources(pair.source)
            target = self.codec.decode_photo(pair.target)
            return MappedFace(embedding=identifiers[0].identify(target), sources=sources)
        except NoFaceError as exc:
            refusal = ProtocolError(ErrorCode.NO_FACE, f"target photo: {exc}")
        except ProtocolError as exc:
            refusal = ProtocolError(exc.code, exc.message)
        # A fresh error, made and returned outside the handler: the caught one's traceback and
        # context would keep every frame's locals (decoded photos, tens of MB a pair) alive in
        # a reference cycle until the garbage collector ran.
        return refusal

    def prepare_sources(self, image_data: bytes) -> dict[str, object]:
        """Decode a client's source photo and let every processor prepare it (off the loop)."""
        image = self.codec.decode_photo(image_data)
        try:
            return {processor.name: processor.prepare_source(image) for processor in self.processors}
        except NoFaceError as exc:
            message = str(exc)
        raise ProtocolError(ErrorCode.NO_FACE, message)  # outside the handler: no context, no cycle (see prepare_pair)
