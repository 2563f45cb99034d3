"""Image decoding and encoding for the worker threads (libjpeg-turbo via PyTurboJPEG).

Nothing a client sends is decoded on trust. Every image is sized from its header first, so
a small hostile message cannot make the server allocate a gigapixel frame; a JPEG with far
fewer bytes than any real image of its declared size needs (a truncated or forged file) is
refused before it is decoded; and a frame libjpeg-turbo can only decode with a warning
(corrupt data, a premature end) is refused rather than processed with grey rows. Photos
(source faces, face maps) are decoded at the size face detection needs, using the JPEG
format's own 1/2, 1/4 and 1/8 scaled decoding, so a 4K photo never costs 4K of memory.
"""
from __future__ import annotations

import math
import struct

import cv2
import numpy as np
from turbojpeg import TJCS_CMYK, TJCS_YCCK, TJFLAG_FASTDCT, TJFLAG_FASTUPSAMPLE, TJSAMP_420, TurboJPEG

from protocol import ErrorCode, ProtocolError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR = struct.Struct(">4sII")
_JPEG_SOI = b"\xff\xd8"
# Fewer bytes than this per pixel cannot be a real JPEG: even a flat grey image needs about a
# bit per 8x8 block of luminance (the DC value and an end-of-block code). The 625-byte file
# that declares 3840x2160 is 13x short of this bound.
MIN_BYTES_PER_PIXEL = 1 / 1024
PHOTO_MAX_SIDE = 1280  # photos are decoded to at most this: plenty for finding and warping a face
_PNG_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


class _StrictTurboJPEG(TurboJPEG):
    """PyTurboJPEG turns libjpeg-turbo's warnings (corrupt data, premature end) into Python
    warnings and returns the damaged image; here they raise like errors. Overriding the
    name-mangled hook keeps it per call and thread-safe, unlike a warnings filter."""

    def _TurboJPEG__report_error(self, handle):  # noqa: N802 - the mangled name is the hook
        raise OSError(self._TurboJPEG__get_error_string(handle))


class JpegCodec:
    """Thread-safe: PyTurboJPEG opens a libjpeg-turbo handle per call and releases the GIL."""

    def __init__(self, quality: int, max_pixels: int) -> None:
        self._turbo = _StrictTurboJPEG()
        self.quality = quality
        self.max_pixels = max_pixels

    def check_size(self, width: int, height: int, seq: int | None) -> None:
        if width <= 0 or height <= 0:
            raise ProtocolError(ErrorCode.BAD_IMAGE, f"image has no pixels ({width}x{height})", seq)
        if width * height > self.max_pixels:
            raise ProtocolError(
                ErrorCode.IMAGE_TOO_LARGE,
                f"image is {width}x{height}; this server accepts at most {self.max_pixels} pixels",
                seq,
            )

    def _jpeg_header(self, jpeg: bytes, seq: int | None) -> tuple[int, int, int]:
        """(width, height, colourspace) of a JPEG that passed every check before decoding."""
        if not jpeg.startswith(_JPEG_SOI):
            raise ProtocolError(ErrorCode.BAD_IMAGE, "frame data is not a JPEG image", seq)
        try:
            width, height, _subsampling, colorspace = self._turbo.decode_header(jpeg)
        except OSError as exc:
            raise ProtocolError(ErrorCode.BAD_IMAGE, f"unreadable JPEG header: {exc}", seq) from None
        self.check_size(width, height, seq)
        if len(jpeg) < width * height * MIN_BYTES_PER_PIXEL:
            raise ProtocolError(ErrorCode.BAD_IMAGE, f"a {width}x{height} JPEG cannot be {len(jpeg)} bytes: "
                                "the file is truncated or forged", seq)
        return width, height, colorspace

    def decode(self, jpeg: bytes, seq: int | None = None) -> np.ndarray:
        """JPEG -> BGR uint8 array, or `ProtocolError` (bad_image / image_too_large)."""
        _, _, colorspace = self._jpeg_header(jpeg, seq)
        return self._decode_checked(jpeg, colorspace, seq)

    def _decode_checked(self, jpeg: bytes, colorspace: int, seq: int | None,
                        scaling_factor: tuple[int, int] | None = None) -> np.ndarray:
        if colorspace in (TJCS_CMYK, TJCS_YCCK):  # libjpeg-turbo has no CMYK -> BGR; OpenCV does
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise ProtocolError(ErrorCode.BAD_IMAGE, "corrupt CMYK JPEG data", seq)
            return image
        try:
            return self._turbo.decode(jpeg, scaling_factor=scaling_factor, flags=TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE)
        except OSError as exc:
            raise ProtocolError(ErrorCode.BAD_IMAGE, f"corrupt JPEG data: {exc}", seq) from None

    def encode(self, image: np.ndarray) -> bytes:
        """BGR uint8 -> JPEG, 4:2:0 (smaller and ~25% faster than the library's 4:2:2 default)."""
        return self._turbo.encode(image, quality=self.quality, jpeg_subsample=TJSAMP_420)

    def photo_size(self, data: bytes) -> tuple[int, int]:
        """(width, height) a photo will be decoded at, from its header alone."""
        width, height = self._photo_header(data)
        shrink = _shrink_for(width, height)
        return math.ceil(width / shrink), math.ceil(height / shrink)

    def _photo_header(self, data: bytes) -> tuple[int, int]:
        if data.startswith(_JPEG_SOI):
            width, height, _ = self._jpeg_header(data, None)
            return width, height
        if not data.startswith(_PNG_SIGNATURE) or len(data) < 24:
            raise ProtocolError(ErrorCode.BAD_IMAGE, "source face must be a JPEG or PNG image")
        chunk, width, height = _PNG_IHDR.unpack_from(data, 12)
        if chunk != b"IHDR":
            raise ProtocolError(ErrorCode.BAD_IMAGE, "PNG without an IHDR header")
        self.check_size(width, height, None)
        return width, height

    def decode_photo(self, data: bytes) -> np.ndarray:
        """A source photo (JPEG or PNG, as browsers and phones send), as BGR, its longer side at
        most `PHOTO_MAX_SIDE`: decoded at 1/2, 1/4 or 1/8 scale where that suffices."""
        width, height = self._photo_header(data)
        shrink = _shrink_for(width, height)
        if data.startswith(_JPEG_SOI):
            colorspace = self._turbo.decode_header(data)[3]
            image = self._decode_checked(data, colorspace, None, (1, shrink) if shrink > 1 else None)
        else:
            flag = next((flag for factor, flag in _PNG_REDUCED if factor == shrink), cv2.IMREAD_COLOR)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
            if image is None:
                raise ProtocolError(ErrorCode.BAD_IMAGE, "corrupt PNG data")
        longer = max(image.shape[:2])
        if longer > PHOTO_MAX_SIDE:  # the scaled decode comes in powers of two: the rest here
            scale = PHOTO_MAX_SIDE / longer
            image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
        return image


def _shrink_for(width: int, height: int) -> int:
    """The largest of 1, 2, 4, 8 that keeps the photo's longer side at least `PHOTO_MAX_SIDE`."""
    longer = max(width, height)
    return next((factor for factor in (8, 4, 2) if longer / factor >= PHOTO_MAX_SIDE), 1)
