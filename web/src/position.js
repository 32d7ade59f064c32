// Where the map looks, in the address: `#zoom/lat/lng` (MapLibre's own hash). Inside
// Sandstorm the page is an iframe whose address the person never sees, so the shell is told
// too (`setPath`), and a shared grain link then opens at the same view.

export function parseHash(hash) {
  const parts = hash.replace(/^#/, "").split("/").map(Number);
  if (parts.length < 3 || parts.slice(0, 3).some((x) => !Number.isFinite(x))) return null;
  return { zoom: parts[0], lat: parts[1], lng: parts[2] };
}

export function tellShell(map) {
  if (window.parent === window) return;
  let timer = null;
  map.on("moveend", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      window.parent.postMessage({ setPath: location.pathname + location.search + location.hash }, "*");
    }, 300);
  });
}
