// The page's side of Sandstorm's Powerbox: a grain reaches the map-data server only with a
// grant the user gives in the Sandstorm shell. The page asks the shell (its parent frame) with
// a `powerboxRequest` naming the server's API (the descriptor comes from /app/powerbox), waits
// for the answer with the same rpcId, and hands the claim token to the server, which redeems
// and keeps it. Cancelling is not an error: the page says so calmly and offers to ask again.

import { api } from "./api.js";

let nextRpcId = 1;

/** Resolves to "granted" once the server holds a token, or "cancelled"; throws on errors. */
export async function requestMapDataAccess() {
  if (window.parent === window) {
    throw new Error("Access can only be granted inside Sandstorm; open this grain from your Sandstorm server.");
  }
  const { descriptor } = await api.powerbox();
  const rpcId = `desert-atlas-${Date.now()}-${nextRpcId++}`;
  const answer = await new Promise((resolve) => {
    function listen(event) {
      if (event.source !== window.parent || !event.data || event.data.rpcId !== rpcId) return;
      window.removeEventListener("message", listen);
      resolve(event.data);
    }
    window.addEventListener("message", listen);
    window.parent.postMessage({
      powerboxRequest: { rpcId, query: [descriptor], saveLabel: { defaultText: "Map data server" } },
    }, "*");
  });
  if (answer.error) throw new Error(`Sandstorm could not ask for access: ${answer.error}`);
  if (!answer.token) return "cancelled";
  await api.claim(answer.token);
  return "granted";
}

/** Whether the status says downloads need (new) access first: the key, or null. */
export function accessNeeded(status) {
  // A grant is held: a download that failed for want of one only needs a retry.
  if (status.connected === true) return null;
  const key = status["available-areas-error-key"];
  if (key === "access-needed" || key === "access-withdrawn") return key;
  for (const p of Object.values(status["in-progress"] || {})) {
    if (p.downloadError && (p.errorKey === "access-needed" || p.errorKey === "access-withdrawn")) return p.errorKey;
  }
  if (status.connected === false) return "access-needed";
  return null;
}
