// Polls /app/map-download-status and hands each answer to the page's parts. It polls fast
// only while something moves (a download, an install, a deletion, the region list being
// fetched, the base map's places being imported), slowly when nothing does or the tab is
// hidden, and backs off while the grain cannot be reached (2 s, 4 s … 60 s), retrying at
// once when the browser comes back online.

import { api } from "./api.js";
import { feedback } from "./ui.js";

const FAST = 1000;
const IDLE = 10000;
const HIDDEN = 30000;
const MAX_BACKOFF = 60000;

export function busy(status) {
  return Object.keys(status["in-progress"] || {}).some((id) => !status["in-progress"][id].downloadError)
    || (status["queued-for-download"] || []).length > 0
    || (status["queued-for-deletion"] || []).length > 0
    || status["available-areas-status"] === "started"
    || status["base-map"] === "preparing";
}

export function startPolling(onStatus) {
  let timer = null;
  let failures = 0;
  let current = null;

  async function poll() {
    clearTimeout(timer);
    let delay;
    try {
      current = await api.status();
      failures = 0;
      feedback.clear("status");
      onStatus(current);
      delay = document.hidden ? HIDDEN : busy(current) ? FAST : IDLE;
    } catch (e) {
      failures += 1;
      delay = Math.min(MAX_BACKOFF, 1000 * 2 ** failures);
      feedback.set("status", `${e.message} Trying again in ${Math.round(delay / 1000)} s.`);
    }
    timer = setTimeout(poll, delay);
  }
  window.addEventListener("online", poll);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  return { poll, get current() { return current; } };
}
