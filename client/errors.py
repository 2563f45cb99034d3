"""Failures a user will meet, each carrying the one line they are shown and the exit status.

`python -m client` catches `ClientError` at the top and prints `str(error)` to stderr
instead of a traceback; everything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from protocol import SourceFaceConfirmation

EXIT_RUNTIME = 1  # the run started but could not go on (camera, server, network)
EXIT_USAGE = 2  # the command line names something that is not there (argparse's code too)


class ClientError(Exception):
    """A failure with a clear one-line message for the user."""

    exit_code = EXIT_RUNTIME


class UsageError(ClientError):
    """A bad option or path on the command line."""

    exit_code = EXIT_USAGE


class SourceOpenError(ClientError):
    """The camera or input file cannot be opened or read."""


class ConnectError(ClientError):
    """The server cannot be reached (refused, unreachable, TLS or auth failure)."""


class SourceFaceRejected(ClientError):
    """The server answered `source_face_confirmation` with status "error"."""

    @classmethod
    def unless_accepted(cls, answer: SourceFaceConfirmation, face: str) -> None:
        """Raised, naming `face` ("source face me.jpg") and the server's reason, unless
        `answer` accepts it: streaming without it would only return the camera unchanged."""
        if answer.status != "success":
            raise cls(f"The server refused the {face}: {answer.message or 'no reason given'}")
