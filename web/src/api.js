// The grain server's HTTP API (docs/api.md §2): every call answers JSON, and errors come as
// {"error": "<a sentence>"} which callers show to the user as they are.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("The grain cannot be reached; check your connection.", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError((data && data.error) || `The server answered ${response.status}; try again.`, response.status);
  }
  return data;
}

export const api = {
  status: () => call("GET", "/app/map-download-status"),
  search: (q, lat, lng, zoom, signal) =>
    fetch(`/app/search?q=${encodeURIComponent(q)}&lat=${lat.toFixed(5)}&lng=${lng.toFixed(5)}&zoom=${Math.round(zoom)}`, { signal })
      .then(async (r) => {
        const data = await r.json().catch(() => null);
        if (!r.ok) throw new ApiError((data && data.error) || `Search answered ${r.status}; try again.`, r.status);
        return data;
      }),
  bookmarks: () => call("GET", "/app/bookmarks"),
  saveBookmark: (bookmark) => call("POST", "/app/bookmark", bookmark),
  deleteBookmark: (id) => call("POST", "/app/bookmark-delete", { id }),
  fetchRegions: () => call("POST", "/app/download-manifest", {}),
  download: (id) => call("POST", "/app/download-map", { "tile-id": id }),
  deleteRegion: (id) => call("POST", "/app/map-delete", { "tile-id": id }),
  setTutorial: (mode) => call("POST", "/app/tutorial-mode", { "tutorial-mode": mode }),
  tileJson: () => call("GET", "/tiles/tiles.json"),
  powerbox: () => call("GET", "/app/powerbox"),
  claim: (token) => call("POST", "/app/powerbox-claim", { token }),
};
