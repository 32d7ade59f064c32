// Stands in for the Sandstorm shell around a grain's iframe: answers `powerboxRequest`
// messages with the answer the test sets (`window.nextAnswer`), and records them and every
// `setPath` the page sends.
window.powerboxRequests = [];
window.paths = [];
window.nextAnswer = { token: "claim-token-1" };
document.getElementById("grain").src = new URLSearchParams(location.search).get("app");
window.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.powerboxRequest) {
    window.powerboxRequests.push(data.powerboxRequest);
    event.source.postMessage({ rpcId: data.powerboxRequest.rpcId, ...window.nextAnswer }, "*");
  }
  if (data.setPath) window.paths.push(data.setPath);
});
