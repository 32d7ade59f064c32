// The grain server's HTTP API (see the contract): every call answers JSON, and errors come
// as {"error": "<a sentence>"} which callers show to the user as they are.

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new Error((data && data.error) || `The server answered ${response.status}.`);
    error.status = response.status;
    throw error;
  }
  return data;
}

export const api = {
  status: () => call("GET", "/app/map-download-status"),
  search: (q, lat, lng) => call("GET", `/app/search?q=${encodeURIComponent(q)}&lat=${lat}&lng=${lng}`),
  bookmarks: () => call("GET", "/app/bookmarks"),
  saveBookmark: (bookmark) => call("POST", "/app/bookmark", bookmark),
  deleteBookmark: (id) => call("POST", "/app/bookmark-delete", { id }),
  fetchRegions: () => call("POST", "/app/download-manifest", {}),
  download: (id) => call("POST", "/app/download-map", { "tile-id": id }),
  deleteRegion: (id) => call("POST", "/app/map-delete", { "tile-id": id }),
  setTutorial: (mode) => call("POST", "/app/tutorial-mode", { "tutorial-mode": mode }),
  tileJson: () => call("GET", "/tiles/tiles.json"),
};
