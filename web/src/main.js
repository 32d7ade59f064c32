// Desert Atlas in the browser: the map with offline labels, search as you type, shared
// bookmarks, region downloads, a per-role tutorial. It talks only to its own grain: tiles,
// glyphs and the API all come from this origin.

import maplibregl from "maplibre-gl";
import { api } from "./api.js";
import { mapStyle, BASE_MAX_ZOOM, SEA } from "./style.js";
import { $, feedback, isPhone } from "./ui.js";
import { startPolling } from "./status.js";
import { setupSearch } from "./search.js";
import { setupBookmarks } from "./bookmarks.js";
import { setupRegions } from "./regions.js";
import { setupTutorial } from "./tutorial.js";
import { parseHash, tellShell } from "./position.js";

let status = null;
const can = (permission) => Boolean(status && status.permissions.includes(permission));

async function readTileJson() {
  try {
    const tj = await api.tileJson();
    feedback.clear("tiles");
    return tj;
  } catch (e) {
    feedback.set("tiles", e.message);
    return { maxzoom: BASE_MAX_ZOOM, regions: [], attribution: "" };
  }
}

function styleFor(tileJson, areas, bookmarkPoints = null) {
  return mapStyle({
    origin: location.origin,
    regionsMaxZoom: tileJson.maxzoom || 0,
    version: (tileJson.regions || []).join(","),
    areas,
    bookmarks: bookmarkPoints,
    covered: Object.values(tileJson.region_bounds || {}),
  });
}

// Under Sandstorm's strict content security policy (a server setting) no web worker may start,
// and MapLibre draws nothing without its worker: say so where the map would be, once, rather
// than "Loading" for ever. Everything else on the page works without the map.
document.addEventListener("securitypolicyviolation", (event) => {
  if (event.effectiveDirective !== "worker-src" || document.body.dataset.mapBlocked) return;
  document.body.dataset.mapBlocked = "true";
  const box = $("loading");
  box.setAttribute("role", "alert");
  box.classList.add("blocked");
  box.textContent = "This server's security policy forbids the web worker that draws the map, so the map stays blank. "
    + "Search, bookmarks and the export still work. Its administrator can allow it: ALLOW_LEGACY_RELAXED_CSP=true in sandstorm.conf.";
});
// The sea is the map element's background, shown from the page's first frames on.
$("map").style.background = SEA;
// The map's worker starts now, while the TileJSON is read, not once the map is made.
maplibregl.prewarm();
// The world view: the world once, edge to edge, on screens wider than it is at zoom 1.3; a
// second copy showing at an edge would only repeat the other edge (and its tiles would be
// parsed again before the first view is complete).
function worldView() {
  const fit = Math.log2($("map").clientWidth / 512) + 0.01;
  return fit > 1.3 ? { center: [0, 25], zoom: fit } : { center: [10, 25], zoom: 1.3 };
}

let tileJson = await readTileJson();
const startView = parseHash(location.hash);
const map = new maplibregl.Map({
  container: "map",
  style: styleFor(tileJson, null),
  ...(startView ? { center: [startView.lng, startView.lat], zoom: startView.zoom } : worldView()),
  hash: true,
  attributionControl: false,
  maxPitch: 0,
  // Labels appear at once (as in OrganicMaps) instead of fading in over 300 ms: the first view
  // is complete that much sooner, and no frames are drawn for the fade.
  fadeDuration: 0,
  dragRotate: false,
  // CJK is drawn with the browser's own fonts; the glyph files cover the other scripts.
  localIdeographFontFamily: "'Noto Sans CJK SC', 'Noto Sans CJK JP', 'Noto Sans CJK KR', sans-serif",
});
map.touchZoomRotate.disableRotation();
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
map.addControl(new maplibregl.GeolocateControl({ trackUserLocation: false }), "top-right");
map.addControl(new maplibregl.ScaleControl(), "bottom-left");
const attribution = new maplibregl.AttributionControl({ compact: true, customAttribution: "© OpenStreetMap contributors" });
map.addControl(attribution, "bottom-right");
window.desertAtlasMap = map;
map.on("error", (event) => {
  // Tile and glyph failures: one sentence, cleared when the map draws again.
  console.warn("map:", event.error && event.error.message);
  if (event.error && event.error.status !== 204) feedback.set("map", "Part of the map could not be loaded; it is retried as you move the map.");
});
map.on("idle", () => feedback.clear("map"));
map.once("idle", () => {
  regions.addToMap();
  bookmarks.addToMap();
  $("loading").hidden = true;
  document.body.dataset.mapReady = "true";
  document.body.dataset.firstPaintMs = String(Math.round(performance.now()));
});
tellShell(map);

// The bottom sheet on phones: peek (search only), half, full. A side panel on computers.
const sheet = $("sheet");
function setSheet(state) {
  sheet.dataset.state = state;
  $("sheet-handle").setAttribute("aria-expanded", String(state !== "peek"));
  $("sheet-handle").setAttribute("aria-label", state === "peek" ? "Show more" : "Show less");
}
$("sheet-handle").addEventListener("click", () => setSheet(sheet.dataset.state === "peek" ? "half" : "peek"));
$("search").addEventListener("focus", () => {
  if (isPhone() && sheet.dataset.state === "peek") setSheet("half");
});
const collapseOnPhone = () => {
  if (isPhone()) setSheet("peek");
};

function selectTab(name) {
  for (const tab of ["bookmarks", "regions"]) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`panel-${tab}`).hidden = tab !== name;
  }
  if (name === "regions") regions.opened();
  if (isPhone() && sheet.dataset.state === "peek") setSheet("half");
}
$("tab-bookmarks").addEventListener("click", () => selectTab("bookmarks"));
$("tab-regions").addEventListener("click", () => selectTab("regions"));

const bookmarks = setupBookmarks({ map, maplibregl, canEdit: () => can("bookmarks"), onFlyTo: collapseOnPhone });
const search = setupSearch({ map, maplibregl, canBookmark: () => can("bookmarks"), addBookmarkPopup: bookmarks.addBookmarkPopup, onPicked: collapseOnPhone });

// After a download or a delete: read TileJSON again and draw the new regions, no reload.
async function regionsChanged() {
  tileJson = await readTileJson();
  map.setStyle(styleFor(tileJson, regions.boxes(), bookmarks.collection()));
  showAttribution();
}
const regions = setupRegions({
  map, maplibregl,
  canDownload: () => can("download"),
  refreshStatus: () => polling.poll(),
  onRegionsChanged: regionsChanged,
});
const tutorial = setupTutorial({ onShow: () => { if (isPhone()) setSheet("half"); } });

function showAttribution() {
  const text = tileJson.attribution ? tileJson.attribution.replace(/<[^>]*>/g, "").replace(/\s+/g, " ").trim() : "";
  $("attribution").textContent = `Map data © OpenStreetMap contributors (ODbL). ${text}`;
}
showAttribution();

const polling = startPolling((next) => {
  status = next;
  for (const node of document.querySelectorAll(".needs-download")) node.hidden = !can("download");
  for (const node of document.querySelectorAll(".needs-bookmarks")) node.hidden = !can("bookmarks");
  document.body.dataset.role = can("download") ? "downloader" : can("bookmarks") ? "bookmarker" : "viewer";
  if (!can("download") && !$("panel-regions").hidden) selectTab("bookmarks");
  tutorial.update(status);
  regions.update(status);
  search.baseMapIs(status["base-map"]);
});
// The region boxes' source exists once the style has loaded: draw them then.
map.once("load", () => {
  if (status) regions.update(status);
});
await polling.poll();

// The first view: the address's position, else every bookmark, else the world.
const all = await bookmarks.load();
const points = Object.values(all).map((b) => [b.latlng.lng, b.latlng.lat]);
if (!startView && points.length) {
  const bounds = points.reduce((b, p) => b.extend(p), new maplibregl.LngLatBounds(points[0], points[0]));
  // Keep the bookmarks clear of the side panel (computers) or the bottom sheet (phones).
  const padding = isPhone() ? { top: 60, bottom: 150, left: 40, right: 40 } : { top: 60, bottom: 60, left: 430, right: 80 };
  map.fitBounds(bounds, { padding, maxZoom: 14, duration: 0 });
}
setInterval(() => bookmarks.load(), 15000);
document.body.dataset.ready = "true";
