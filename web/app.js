// Desert Atlas in the browser: the map, search, shared bookmarks, region downloads and a
// short first-run tutorial. Talks only to its own grain (no other origin is ever contacted).

import { api } from "./api.js";
import { mapStyle } from "./map-style.js";

const $ = (id) => document.getElementById(id);
const maplibregl = window.maplibregl;
let status = null;
let bookmarkMarkers = [];

function say(text, isError = false) {
  const box = $("message");
  box.textContent = text;
  box.classList.toggle("error", isError);
  box.hidden = !text;
}

async function attempt(work) {
  try {
    return await work();
  } catch (e) {
    say(e.message, true);
    return undefined;
  }
}

const tileJson = await attempt(() => api.tileJson());
const map = new maplibregl.Map({
  container: "map",
  style: mapStyle(location.origin, (tileJson && tileJson.maxzoom) || 14),
  center: [0, 20],
  zoom: 1.5,
  attributionControl: false,
  hash: true,
});
map.addControl(new maplibregl.NavigationControl(), "top-left");
map.addControl(new maplibregl.AttributionControl({
  customAttribution: ["© OpenStreetMap contributors", (tileJson && tileJson.attribution) || ""].filter(Boolean),
}));
$("attribution").textContent =
  "Map data © OpenStreetMap contributors (ODbL). " + ((tileJson && tileJson.attribution) || "");
window.desertAtlasMap = map;

// Search: nearest to the map's centre first.
$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("search").value;
  const c = map.getCenter();
  const results = await attempt(() => api.search(q, c.lat.toFixed(5), c.lng.toFixed(5)));
  const list = $("results");
  list.replaceChildren();
  if (!results) return;
  if (results.length === 0 && q.trim()) {
    const li = document.createElement("li");
    li.textContent = "Nothing found. Downloaded regions add streets and places.";
    list.append(li);
  }
  for (const place of results) {
    const li = document.createElement("li");
    li.textContent = place.title;
    li.className = "result";
    li.addEventListener("click", () => {
      map.flyTo({ center: [place.loc[1], place.loc[0]], zoom: place.tile_id === "base-map" ? 9 : 15 });
      $("bookmark-name").value = place.title;
    });
    list.append(li);
  }
});

// Bookmarks, shared by everyone in the grain.
async function loadBookmarks() {
  const bookmarks = await attempt(() => api.bookmarks());
  if (!bookmarks) return;
  for (const m of bookmarkMarkers) m.remove();
  bookmarkMarkers = [];
  const list = $("bookmarks");
  list.replaceChildren();
  const canEdit = status && status.permissions.includes("bookmarks");
  for (const [id, b] of Object.entries(bookmarks).sort((x, y) => x[1].name.localeCompare(y[1].name))) {
    const el = document.createElement("div");
    el.className = "marker";
    el.title = b.name;
    bookmarkMarkers.push(new maplibregl.Marker({ element: el })
      .setLngLat([b.latlng.lng, b.latlng.lat])
      .setPopup(new maplibregl.Popup({ offset: 10 }).setText(b.name))
      .addTo(map));
    const li = document.createElement("li");
    li.className = "bookmark";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = b.name;
    name.addEventListener("click", () => map.flyTo({ center: [b.latlng.lng, b.latlng.lat], zoom: 15 }));
    li.append(name);
    if (canEdit) {
      const rename = document.createElement("button");
      rename.textContent = "Rename";
      rename.className = "rename";
      rename.addEventListener("click", async () => {
        const newName = window.prompt("New name", b.name);
        if (newName === null) return;
        try {
          await api.saveBookmark({ id, version: b.version, name: newName, latlng: b.latlng });
          say("");
        } catch (e) {
          say(e.status === 409 ? "Someone else changed this bookmark first; here is their version." : e.message, true);
        }
        await loadBookmarks();
      });
      const remove = document.createElement("button");
      remove.textContent = "Delete";
      remove.className = "delete";
      remove.addEventListener("click", async () => {
        await attempt(() => api.deleteBookmark(id));
        await loadBookmarks();
      });
      li.append(" ", rename, " ", remove);
    }
    list.append(li);
  }
}

$("bookmark-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const c = map.getCenter();
  const saved = await attempt(() => api.saveBookmark({
    name: $("bookmark-name").value,
    latlng: { lat: Number(c.lat.toFixed(6)), lng: Number(c.wrap().lng.toFixed(6)) },
  }));
  if (saved) {
    $("bookmark-name").value = "";
    say("");
    await loadBookmarks();
  }
});

// Regions: the list from the map-data server, drawn as boxes to click.
function drawAreas(areas) {
  const features = Object.entries(areas || {}).map(([id, [[s, w], [n, e]]]) => ({
    type: "Feature",
    properties: { id },
    geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] },
  }));
  const data = { type: "FeatureCollection", features };
  const source = map.getSource("areas");
  if (source) {
    source.setData(data);
    return;
  }
  map.addSource("areas", { type: "geojson", data });
  map.addLayer({ id: "areas-fill", type: "fill", source: "areas", paint: { "fill-color": "#3a7bd5", "fill-opacity": 0.08 } });
  map.addLayer({ id: "areas-line", type: "line", source: "areas", paint: { "line-color": "#3a7bd5", "line-width": 1 } });
  map.on("click", "areas-fill", async (event) => {
    const id = event.features[0].properties.id;
    if (status.done.includes(id)) return;
    if (window.confirm(`Download the region ${id}?`)) {
      await attempt(() => api.download(id));
      await refreshStatus();
    }
  });
}

function regionLine(id, text, progress, actions) {
  const li = document.createElement("li");
  li.className = "region";
  li.dataset.id = id;
  li.append(`${id}: ${text}`);
  if (progress !== undefined) {
    const bar = document.createElement("div");
    bar.className = "progress";
    const fillBar = document.createElement("div");
    fillBar.style.width = `${Math.round(progress * 100)}%`;
    bar.append(fillBar);
    li.append(bar);
  }
  for (const [label, action] of actions) {
    const b = document.createElement("button");
    b.textContent = label;
    b.addEventListener("click", async () => {
      await attempt(action);
      await refreshStatus();
    });
    li.append(" ", b);
  }
  return li;
}

function showRegions() {
  const list = $("regions");
  list.replaceChildren();
  for (const [id, p] of Object.entries(status["in-progress"])) {
    if (p.downloadError) {
      const li = regionLine(id, `failed: ${p.error || "download error"}`, undefined, [
        ["Retry", () => api.download(id)],
        ["Remove", () => api.deleteRegion(id)],
      ]);
      li.classList.add("failed");
      list.append(li);
    } else if (p.phase === "installing") {
      const total = p.searchImportTotal || 1;
      list.append(regionLine(id, "installing", p.searchImportDone / total, []));
    } else {
      const mb = (p.bytesDone / 1e6).toFixed(1);
      list.append(regionLine(id, `downloading (${mb} MB)`, p.downloadDone / Math.max(p.downloadTotal, 1), []));
    }
  }
  for (const id of status["queued-for-download"]) list.append(regionLine(id, "waiting to download", undefined, []));
  for (const id of status["queued-for-deletion"]) list.append(regionLine(id, "being deleted", undefined, []));
  for (const id of status.done) {
    list.append(regionLine(id, "downloaded", undefined, [["Delete", () => api.deleteRegion(id)]]));
  }
  $("delete-all").hidden = status.done.length < 2;
  const areas = status["available-areas"];
  const state = status["available-areas-status"];
  $("regions-status").textContent =
    state === "started" ? "Fetching the region list…"
    : state === "error" ? `The region list could not be fetched: ${status["available-areas-error"] || "error"}. Try again.`
    : areas ? "Click a blue box on the map to download that region." : "";
}

const TUTORIAL = {
  TUTORIAL_TYPE_DOWNLOADER: "Welcome! Search for a place, then open “Show regions to download” and click a box to download its streets and places.",
  TUTORIAL_TYPE_BOOKMARKER: "Welcome! Search for places and add bookmarks; everyone in this grain sees them.",
  TUTORIAL_TYPE_VIEWER: "Welcome! Search for places and see the bookmarks shared in this grain.",
};

function showTutorial() {
  const type = status.permissions.includes("download") ? "TUTORIAL_TYPE_DOWNLOADER"
    : status.permissions.includes("bookmarks") ? "TUTORIAL_TYPE_BOOKMARKER" : "TUTORIAL_TYPE_VIEWER";
  $("tutorial").hidden = status["tutorial-mode"] === "TUTORIAL_DONE";
  $("tutorial-text").textContent = TUTORIAL[type];
}

$("tutorial-next").addEventListener("click", async () => {
  await attempt(() => api.setTutorial("TUTORIAL_DONE"));
  await refreshStatus();
});

$("fetch-regions").addEventListener("click", async () => {
  await attempt(() => api.fetchRegions());
  await refreshStatus();
});

$("delete-all").addEventListener("click", async () => {
  if (window.confirm("Delete every downloaded region?")) {
    await attempt(() => api.deleteRegion("all"));
    await refreshStatus();
  }
});

let lastDone = "";
async function refreshStatus() {
  const next = await attempt(() => api.status());
  if (!next) return;
  status = next;
  for (const el of document.querySelectorAll(".needs-download")) el.hidden = !status.permissions.includes("download");
  for (const el of document.querySelectorAll(".needs-bookmarks")) el.hidden = !status.permissions.includes("bookmarks");
  showTutorial();
  showRegions();
  if (map.isStyleLoaded()) drawAreas(status["available-areas"]);
  const done = status.done.join(",");
  if (done !== lastDone) {
    lastDone = done;
    // Installed or deleted regions change the tiles: draw them again.
    const source = map.getSource("atlas");
    if (source) source.setTiles([`${location.origin}/tiles/{z}/{x}/{y}.mvt?regions=${encodeURIComponent(done)}`]);
  }
}

map.on("load", () => {
  if (status) drawAreas(status["available-areas"]);
});
await refreshStatus();
await loadBookmarks();
setInterval(refreshStatus, 2000);
setInterval(loadBookmarks, 15000);
document.body.dataset.ready = "true";
