"""The one boundary between what went wrong inside the server and what a client is told.

A `ProtocolError` is the client's own doing (a bad image, no face) and goes back as it is.
Anything else is the server's fault (a processor bug, a model that failed): it is logged
with its traceback, and the client hears only `processing_failed` and what failed, never
the exception's text. Either way the traceback is dropped: its frames keep their locals
(decoded photos and frames, tens of MB) alive in a reference cycle until the garbage
collector runs.
"""
from __future__ import annotations

import logging

from protocol import ErrorCode, ProtocolError

log = logging.getLogger(__name__)


def server_fault(what: str, seq: int | None = None) -> ProtocolError:
    """What a client is told when the server failed at its `what` ("frame", "face", ...)."""
    return ProtocolError(ErrorCode.PROCESSING_FAILED, f"the server failed to process this {what}", seq)


def reported(exc: BaseException, what: str, client: object, seq: int | None = None) -> ProtocolError:
    """The error to send `client` for `exc`, raised while processing its `what`."""
    if isinstance(exc, ProtocolError):
        return exc.with_traceback(None)
    log.error("processing client %s's %s failed", client, what, exc_info=exc)
    exc.with_traceback(None)
    return server_fault(what, seq)
