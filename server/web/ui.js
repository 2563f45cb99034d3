// Small DOM helpers: the message list, error explanations, the stats table.

import { ErrorCode } from "./protocol.js";

// What the user can do about each server error code (docs/protocol.md, "Errors").
const HINTS = {
  [ErrorCode.BAD_IMAGE]: "The server could not decode an image this page sent.",
  [ErrorCode.IMAGE_TOO_LARGE]: "The image has more pixels than the server allows: lower the send width.",
  [ErrorCode.NO_FACE]: "Pick a clear, front-facing photo of one face.",
  [ErrorCode.PROCESSING_FAILED]: "The server failed on one frame; the stream goes on.",
  [ErrorCode.BAD_CONFIG]: "The option was refused; nothing was changed.",
  [ErrorCode.UNSUPPORTED_VERSION]: "The server speaks another protocol version: reload the page.",
};
const PAGE_BUG = "The server did not understand this page (reload it; if it persists, report a bug).";

export function describeServerError({ code, message, seq }) {
  const hint = HINTS[code] ?? PAGE_BUG;
  const about = seq === undefined || seq === null ? "" : ` (frame ${seq})`;
  return `Server error ${code}${about}: ${message || "(no details)"} — ${hint}`;
}

/**
 * The visible list of messages, newest first. A repeat of the newest message bumps a
 * counter instead of adding a line, so an error on every frame cannot flood the page.
 */
export class MessageLog {
  constructor(list, clearButton, limit = 6) {
    Object.assign(this, { list, clearButton, limit });
    clearButton.addEventListener("click", () => this.clear());
  }

  add(text, level = "info") {
    const first = this.list.firstElementChild;
    if (first && first.dataset.text === text) {
      const count = Number(first.dataset.count) + 1;
      first.dataset.count = String(count);
      first.querySelector(".count").textContent = ` ×${count}`;
      return;
    }
    const item = document.createElement("li");
    item.className = `message ${level}`;
    item.dataset.text = text;
    item.dataset.count = "1";
    item.dataset.level = level;
    const time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString();
    item.append(time, " ", text);
    const count = document.createElement("span");
    count.className = "count";
    item.append(count);
    this.list.prepend(item);
    while (this.list.children.length > this.limit) this.list.lastElementChild.remove();
    this.clearButton.hidden = false;
  }

  clear() {
    this.list.replaceChildren();
    this.clearButton.hidden = true;
  }
}

// Durations in seconds, shown in ms: frame times are milliseconds to people.
const SECONDS = /(time_avg|time_p\d+|wait_avg)$/;
const LABELS = { uptime_s: "uptime" };

function formatStat(key, value) {
  if (typeof value !== "number") return String(value);
  if (key === "uptime_s") return `${value.toFixed(0)} s`;
  if (SECONDS.test(key)) return `${(value * 1000).toFixed(1)} ms`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

// Nested objects and lists become dotted names: {"client": {"frames_processed": 3}} -> client.frames_processed.
function flatten(data, prefix = "", rows = []) {
  for (const [key, value] of Object.entries(data)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object") flatten(value, name, rows);
    else rows.push([name, value]);
  }
  return rows;
}

/** Fill the stats table: one row per (flattened) field, `data-stat` and `data-value` for tools. */
export function renderStats(table, data) {
  const body = table.tBodies[0];
  // Your own connection's counters first: that is what a user of this page asks about.
  const rows = flatten(data).sort(([a], [b]) => Number(!a.startsWith("client.")) - Number(!b.startsWith("client.")));
  body.replaceChildren(
    ...rows.map(([key, value]) => {
      const row = document.createElement("tr");
      row.dataset.stat = key;
      row.dataset.value = JSON.stringify(value);
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = LABELS[key] ?? key.replace(/^client\./, "you: ").replaceAll("_", " ");
      const cell = document.createElement("td");
      cell.textContent = formatStat(key.split(".").at(-1), value);
      row.append(name, cell);
      return row;
    }),
  );
  table.hidden = false;
}
