// Stands in for the Sandstorm shell around a grain's iframe (shell/imports/client/
// grain-client.js, sandstorm-ui-powerbox): a `powerboxRequest` from the grain is answered as
// the Powerbox answers once the user has chosen, with the claim token the test puts in
// `window.nextAnswer` ({token} when access is granted, {canceled: true} when the user closes
// the Powerbox), posted back to the grain's origin. Every request and `setPath` is recorded.
window.powerboxRequests = [];
window.paths = [];
window.nextAnswer = { canceled: true };
const grain = document.getElementById("grain");
grain.src = new URLSearchParams(location.search).get("app");
window.addEventListener("message", (event) => {
  if (event.source !== grain.contentWindow) return;
  const data = event.data || {};
  if (data.powerboxRequest) {
    window.powerboxRequests.push(data.powerboxRequest);
    event.source.postMessage({ rpcId: data.powerboxRequest.rpcId, ...window.nextAnswer }, event.origin);
  }
  if (data.setPath) window.paths.push(data.setPath);
});
