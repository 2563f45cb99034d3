"""When to connect again and when to give up, sans-I/O: one policy for the live stream (on
either transport), the video job and `--stats`.

The connect loops (`connection.StreamClient`, `webrtc_stream.stream_webrtc`,
`video_job.VideoJob`, `transport.connect`) tell it how each attempt went and wait as long
as its answer says; it decides from those outcomes alone (no sockets, no clock), so each
rule is unit-tested on its own:

- Until a first connection has worked (the server confirmed the source face), give up after
  `retries` retries: a wrong URL should fail in seconds with a clear line, not spin. Once
  one has, never give up: the server will be back.
- A failed attempt, or a connection that ended before any frame came back, waits a backoff
  step (`backoff.Backoff`), so a server in trouble is not hammered. A connection that
  delivered frames resets the backoff: the next attempt goes at once.
- A server that is draining sends `reconnect`: an instruction, not a failure. The next
  attempt goes after the delay it names (at once for 0, never later than the backoff's cap)
  with no failure counted and no backoff step; if that attempt fails (a draining server
  answers 503 until it exits) the backoff takes over. Only one such request per connection
  that delivered frames is followed that way, so a server repeating it cannot make the
  client spin.

The web page's `Retrying` (server/web/connection.js) is the browser's counterpart.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from protocol import Reconnect

from .backoff import Backoff
from .config import ClientConfig
from .errors import ConnectError


@dataclass(frozen=True)
class Retry:
    """Connect again after `delay_s` seconds; `note` is the warning line that says why and when."""

    delay_s: float
    note: str


def attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


@dataclass
class ReconnectPolicy:
    """When to connect again, decided from outcomes alone (no sockets, no clock of its own),
    so the WebSocket stream, the WebRTC stream, a video job and `--stats` follow one rule and
    it can be tested without a server."""

    retries: int  # failed attempts allowed before the first connection works
    backoff: Backoff = field(default_factory=Backoff)
    failures: int = field(init=False, default=0)  # since the last connection that worked
    connected_once: bool = field(init=False, default=False)
    _may_follow: bool = field(init=False, default=True)  # the next `reconnect` request skips the backoff

    def refused(self, why: str) -> Retry:
        """An attempt failed in a way that may pass (refused, timed out, HTTP 5xx): `why` says
        how. `ConnectError` once it is time to give up."""
        self._failed(why)
        return _after(f"{why}; retrying", self.backoff.next_delay())

    def connected(self) -> bool:
        """The server confirmed the source face. True when an earlier connection had worked
        too: this one is a reconnection."""
        again = self.connected_once
        self.connected_once, self.failures = True, 0
        return again

    def ended(self, going_on: str, *, delivered: bool, asked: Reconnect | None = None,
              unconfirmed: str | None = None) -> Retry:
        """A connection ended. `delivered`: frames came back on it; `asked`: the server's
        `reconnect` request that ended it; `unconfirmed`: why it ended before the source face
        was confirmed (None if it was). `going_on` starts the note ("connection to ... lost;
        reconnecting"). `ConnectError` once it is time to give up."""
        if delivered:
            self.backoff.reset()
            self._may_follow = True
        if asked is not None and self._may_follow:
            self._may_follow = False  # neither a failure nor a backoff step
            return self._as_asked(asked)
        if unconfirmed is not None:
            self._failed(unconfirmed)
        return _after(going_on, 0.0 if delivered else self.backoff.next_delay())

    def _as_asked(self, asked: Reconnect) -> Retry:
        reason = asked.reason or "no reason given"
        delay = min(max(asked.delay_ms, 0) / 1000, self.backoff.max_s)
        then = f"reconnecting in {delay:.1f} s as asked" if delay > 0 else "reconnecting now"
        return Retry(delay, f"server asked to reconnect ({reason}); {then}")

    def _failed(self, why: str) -> None:
        self.failures += 1
        if not self.connected_once and self.failures > self.retries:
            raise ConnectError(f"{why} (gave up after {attempts(self.failures)})")


def _after(going_on: str, delay: float) -> Retry:
    return Retry(delay, f"{going_on} in {delay:.1f} s" if delay > 0 else going_on)


def reconnect_policy(config: ClientConfig) -> ReconnectPolicy:
    """The policy of one run on `config` (--connect-retries, --reconnect-max)."""
    return ReconnectPolicy(config.connect_retries, Backoff(max_s=config.reconnect_max_s))
