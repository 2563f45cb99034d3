"""Size checks shared by every path that accepts a client's photo (source face, face map)."""
from __future__ import annotations

from protocol import ErrorCode, ProtocolError


def check_source_size(image: bytes, max_bytes: int) -> None:
    """Refuse a photo over `max_bytes` before anything decodes it."""
    if len(image) > max_bytes:
        raise ProtocolError(ErrorCode.IMAGE_TOO_LARGE,
                            f"the photo is {len(image)} bytes; this server accepts at most {max_bytes}")
