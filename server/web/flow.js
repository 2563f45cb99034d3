// The in-flight window: how many sent frames are still unanswered. A port of the Python
// client's client/flow.py, with the same reasoning:
//
// The server is latest-frame-wins: a frame that arrives while the previous one still waits
// replaces it, and the replaced frame is never answered. Counting answers against sends
// would leak one slot per superseded frame and stall the stream. Instead every frame
// carries an increasing seq, and since answers never go back in time, an answer (or an
// `error`) about seq s settles every frame up to s. Unanswered = lastSent - lastSettled.
// A frame lost without a trace is settled by the clock after `timeoutMs`, so the window
// can never stall for good. No DOM and no sockets here: the caller passes `now` (ms).
//
// Pacing: a paced server (the `facestream.pacing` subprotocol) says with each answer when
// it will be ready for this client's next frame: `paceMs` after the last frame sent. The
// window holds frames back until then (to within `paceSlackMs`, half a camera frame), and
// spaces every frame sent by the last pace until the next answer says otherwise: when the
// server is the bottleneck frames go one at a time, just in time for their turn, instead
// of waiting behind each other and every other client's.

export class InFlightWindow {
  constructor({ limit = 2, timeoutMs = 5000, firstSeq = 1, paceSlackMs = 0 } = {}) {
    if (!(limit >= 1)) throw new RangeError(`in-flight limit must be at least 1, got ${limit}`);
    if (!(timeoutMs > 0)) throw new RangeError(`timeout must be positive, got ${timeoutMs}`);
    this.limit = limit;
    this.timeoutMs = timeoutMs;
    this.paceSlackMs = paceSlackMs;
    this.lastSent = firstSeq - 1;
    this.lastSettled = firstSeq - 1;
    this.timeouts = 0; // frames settled by the clock, not by the server
    this.sentAt = []; // [seq, time] of unsettled frames, oldest first
    this.notBefore = -Infinity; // the server's pacing: no frame before this
    this.paceMs = null; // the latest pace the server asked for
    this.lastSentAt = -Infinity;
  }

  get inFlight() {
    return this.lastSent - this.lastSettled;
  }

  /** True when one more frame fits and the server's pace allows it; expires frames older than the timeout first. */
  canSend(now) {
    this.expire(now);
    return this.inFlight < this.limit && now >= this.notBefore - this.paceSlackMs;
  }

  nextSeq() {
    return this.lastSent + 1;
  }

  /** Record that frame nextSeq() went out at `now`; returns its seq. */
  sent(now) {
    this.lastSent += 1;
    this.sentAt.push([this.lastSent, now]);
    this.lastSentAt = now;
    if (this.paceMs !== null) this.notBefore = now + this.paceMs;
    return this.lastSent;
  }

  /**
   * An answer or error about `seq` arrived. A paced answer (`paceMs`) also says when the next
   * frame may go: paceMs after the last frame sent. False when it settles nothing new (late, unknown).
   */
  settle(seq, paceMs = null) {
    if (seq === null || seq === undefined || seq <= this.lastSettled || seq > this.lastSent) return false;
    if (paceMs !== null && paceMs !== undefined) {
      this.paceMs = paceMs;
      this.notBefore = this.lastSentAt + paceMs;
    }
    this.lastSettled = seq;
    while (this.sentAt.length && this.sentAt[0][0] <= seq) this.sentAt.shift();
    return true;
  }

  /** Settle frames unanswered for `timeoutMs` or longer; returns how many. */
  expire(now) {
    let expired = 0;
    while (this.sentAt.length && now - this.sentAt[0][1] >= this.timeoutMs) {
      const [seq] = this.sentAt.shift();
      expired += seq - this.lastSettled;
      this.lastSettled = seq;
    }
    this.timeouts += expired;
    return expired;
  }

  /** Forget unanswered frames and the pace (their connection is gone); seq keeps growing across reconnects. */
  reset() {
    this.lastSettled = this.lastSent;
    this.sentAt = [];
    this.notBefore = -Infinity;
    this.paceMs = null;
  }
}
