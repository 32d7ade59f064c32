// Shared bookmarks: markers with popups (name, coordinates, rename, delete after asking, a
// geo: link for other apps), the sorted list, and adding one by right-click, long-press, the
// centre crosshair or a search result. A 409 (someone else renamed it first) is explained
// and their version shown.

import { api } from "./api.js";
import { $, el, feedback, formatLatLng, confirmInline } from "./ui.js";
import { BOOKMARK_SPACE, bookmarkLayers, bookmarkSource } from "./style.js";

const LONG_PRESS_MS = 550;
/** The most characters of a bookmark's name drawn on the map (the popup and list show all). */
const LABEL_CHARS = 32;

export function setupBookmarks({ map, maplibregl, canEdit, onFlyTo }) {
  let bookmarks = {};
  const markers = new Map();
  let addPopup = null;

  const sorted = () => Object.entries(bookmarks)
    .sort(([, a], [, b]) => a.name.localeCompare(b.name, undefined, { sensitivity: "base", numeric: true }));

  function geoUri(b) {
    const { lat, lng } = b.latlng;
    return `geo:${lat},${lng}?q=${lat},${lng}(${encodeURIComponent(b.name)})`;
  }

  function popupContent(id) {
    const b = bookmarks[id];
    const box = el("div", { className: "popup bookmark-popup", dataset: { id } });
    const title = el("h3", {}, b.name);
    box.append(title, el("p", { className: "coords" }, formatLatLng(b.latlng.lat, b.latlng.lng)));
    const note = el("p", { className: "note", role: "status" });
    box.append(note);
    const actions = el("div", { className: "row" });
    if (canEdit()) {
      const rename = el("button", { type: "button", className: "rename" }, "Rename");
      rename.addEventListener("click", () => {
        const field = el("input", { value: b.name, "aria-label": "New name", maxLength: 500, className: "rename-field" });
        const save = el("button", { type: "submit", className: "primary" }, "Save");
        const form = el("form", { className: "row rename-form" }, field, save);
        form.addEventListener("submit", async (event) => {
          event.preventDefault();
          save.disabled = true;
          try {
            await api.saveBookmark({ id, version: b.version, name: field.value, latlng: b.latlng });
            feedback.clear("bookmark");
            await load();
            refreshPopup(id);
          } catch (e) {
            if (e.status === 409) {
              await load();
              const now = bookmarks[id];
              refreshPopup(id, now
                ? `Someone else changed this bookmark first. It is now called “${now.name}”; rename it again if you like.`
                : "Someone else deleted this bookmark first.");
            } else {
              save.disabled = false;
              note.textContent = e.message;
              note.classList.add("error");
            }
          }
        });
        actions.replaceWith(form);
        field.focus();
        field.select();
      });
      const remove = el("button", { type: "button", className: "delete danger" }, "Delete");
      remove.addEventListener("click", () => confirmInline(remove, "Delete this bookmark?", "Delete", async () => {
        try {
          await api.deleteBookmark(id);
          feedback.clear("bookmark");
        } catch (e) {
          if (e.status !== 404) feedback.set("bookmark", e.message);
        }
        await load();
      }));
      actions.append(rename, remove);
    }
    actions.append(el("a", { href: geoUri(b), className: "geo button-like", title: "Open in a map app on this device" }, "Open in another app"));
    box.append(actions);
    return box;
  }

  function refreshPopup(id, message) {
    const marker = markers.get(id);
    if (!marker) return;
    const content = popupContent(id);
    if (message) {
      const note = content.querySelector(".note");
      note.textContent = message;
      note.classList.add("error");
    }
    marker.getPopup().setDOMContent(content);
    if (!marker.getPopup().isOpen()) marker.togglePopup();
  }

  function draw() {
    const seen = new Set();
    for (const [id, b] of Object.entries(bookmarks)) {
      seen.add(id);
      let marker = markers.get(id);
      if (!marker) {
        const element = el("button", { type: "button", className: "bookmark-marker", "aria-label": `Bookmark ${b.name}` }, el("span"));
        marker = new maplibregl.Marker({ element, anchor: "center" })
          .setLngLat([b.latlng.lng, b.latlng.lat])
          .setPopup(new maplibregl.Popup({ offset: 16, maxWidth: "300px" }))
          .addTo(map);
        marker.getPopup().on("open", () => marker.getPopup().setDOMContent(popupContent(id)));
        markers.set(id, marker);
      }
      marker.setLngLat([b.latlng.lng, b.latlng.lat]);
      marker.getElement().setAttribute("aria-label", `Bookmark ${b.name}`);
      marker.getElement().title = b.name;
    }
    showNames();
    for (const [id, marker] of markers) {
      if (!seen.has(id)) {
        marker.remove();
        markers.delete(id);
      }
    }
    const list = $("bookmarks");
    list.replaceChildren(...sorted().map(([id, b]) => el("li", { className: "bookmark", dataset: { id } },
      el("button", {
        type: "button", className: "name link",
        onclick: () => {
          onFlyTo();
          map.flyTo({ center: [b.latlng.lng, b.latlng.lat], zoom: Math.max(map.getZoom(), 15), essential: true });
          map.once("moveend", () => {
            const marker = markers.get(id);
            if (marker && !marker.getPopup().isOpen()) marker.togglePopup();
          });
        },
      }, b.name))));
    $("bookmarks-empty").hidden = list.children.length > 0;
  }

  /** A name as the map shows it: a long one (names have up to 500 characters) cut short. */
  function shortName(name) {
    const chars = [...name];
    return chars.length > LABEL_CHARS ? `${chars.slice(0, LABEL_CHARS - 1).join("").trimEnd()}…` : name;
  }

  /** The bookmarks as points with their names, for the map's label layer. */
  function collection() {
    return {
      type: "FeatureCollection",
      features: Object.entries(bookmarks).map(([id, b]) => ({
        type: "Feature", properties: { id, name: b.name, label: shortName(b.name) },
        geometry: { type: "Point", coordinates: [b.latlng.lng, b.latlng.lat] },
      })),
    };
  }

  // The names' source gets new data only when a name or place changed: the list is read
  // again every 15 s, and new data makes the map's worker cut it again and the map redraw.
  let shownNames = null;
  function showNames() {
    const names = map.getSource("bookmarks");
    const data = collection();
    const json = JSON.stringify(data);
    if (!names || json === shownNames) return;
    names.setData(data);
    shownNames = json;
  }

  // The empty image that keeps labels off the markers, again whenever a new style lacks it.
  map.on("styleimagemissing", (event) => {
    if (event.id !== BOOKMARK_SPACE.id) return;
    const { width, height } = BOOKMARK_SPACE;
    map.addImage(BOOKMARK_SPACE.id, { width, height, data: new Uint8Array(width * height * 4) });
  });

  async function load() {
    try {
      bookmarks = await api.bookmarks();
      feedback.clear("bookmarks-load");
      draw();
    } catch (e) {
      feedback.set("bookmarks-load", e.message);
    }
    return bookmarks;
  }

  /** The "new bookmark" popup at a point: a name field and Save. */
  function addBookmarkPopup(lng, lat, name = "") {
    if (!canEdit()) return;
    if (addPopup) addPopup.remove();
    const field = el("input", { value: name, placeholder: "Name", "aria-label": "Bookmark name", maxLength: 500, className: "new-name" });
    const note = el("p", { className: "note", role: "status" });
    const save = el("button", { type: "submit", className: "primary" }, "Save bookmark");
    const form = el("form", { className: "popup add-popup" },
      el("h3", {}, "New bookmark"), el("p", { className: "coords" }, formatLatLng(lat, lng)), field, note, el("div", { className: "row" }, save));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      save.disabled = true;
      try {
        const [id] = await api.saveBookmark({ name: field.value, latlng: { lat: round(lat), lng: round(lng) } });
        feedback.clear("bookmark");
        popup.remove();
        await load();
        refreshPopup(id);
      } catch (e) {
        save.disabled = false;
        note.textContent = e.message;
        note.classList.add("error");
      }
    });
    // Not closed by a click on the map: the finger lifted after a long-press is one.
    const popup = new maplibregl.Popup({ maxWidth: "300px", closeOnClick: false }).setLngLat([lng, lat]).setDOMContent(form).addTo(map);
    popup.on("close", () => $("crosshair").hidden = true);
    addPopup = popup;
    field.focus();
  }

  // Right-click on a computer, long-press on a phone.
  map.on("contextmenu", (event) => {
    event.preventDefault();
    const { lng, lat } = event.lngLat.wrap();
    addBookmarkPopup(lng, lat);
  });
  let pressTimer = null;
  let pressStart = null;
  map.on("touchstart", (event) => {
    clearTimeout(pressTimer);
    if (event.originalEvent.touches.length !== 1) return;
    pressStart = event.point;
    const { lng, lat } = event.lngLat.wrap();
    pressTimer = setTimeout(() => addBookmarkPopup(lng, lat), LONG_PRESS_MS);
  });
  map.on("touchmove", (event) => {
    if (pressStart && event.point.dist(pressStart) > 10) clearTimeout(pressTimer);
  });
  for (const name of ["touchend", "touchcancel", "movestart", "zoomstart"]) {
    map.on(name, (event) => {
      if (name === "movestart" && !event.originalEvent) return;
      clearTimeout(pressTimer);
    });
  }

  $("add-centre").addEventListener("click", () => {
    const { lng, lat } = map.getCenter().wrap();
    $("crosshair").hidden = false;
    addBookmarkPopup(lng, lat);
  });

  return {
    load, addBookmarkPopup, collection, all: () => bookmarks,
    /** Adds the names' layer on top, once the first view has drawn without it. */
    addToMap() {
      if (map.getSource("bookmarks")) return;
      const data = collection();
      map.addSource("bookmarks", bookmarkSource(data));
      shownNames = JSON.stringify(data);
      for (const layer of bookmarkLayers()) map.addLayer(layer);
    },
  };
}

const round = (x) => Number(x.toFixed(6));
