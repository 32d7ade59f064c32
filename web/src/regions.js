// Regions, for people allowed to download: boxes on the map (highlighted on hover, coloured
// once downloaded), a keyboard-usable list of the regions in view named after the places they
// cover, progress in bytes with speed and time left, cancel, a failed state with the server's
// sentence and a retry, and deleting one or all after asking. Inside Sandstorm the first
// download needs access to the map-data server: the Powerbox panel asks for it.

import { api } from "./api.js";
import { $, el, feedback, formatBytes, formatDuration, confirmInline } from "./ui.js";
import { accessNeeded, requestMapDataAccess } from "./powerbox.js";
import { emptyAreas, areaSource, areaLayers } from "./style.js";

const BOX_MIN_ZOOM = 4;
const MAX_LISTED = 40;

export function setupRegions({ map, maplibregl, canDownload, refreshStatus, onRegionsChanged }) {
  let status = null;
  let hovered = null;
  let popup = null;
  let askedForList = false;
  let accessMessage = null;
  const names = new Map();

  const areas = () => (status && status["available-areas"]) || {};
  const size = (id) => {
    const sizes = status && status["available-areas-bytes"];
    return sizes && sizes[id] ? formatBytes(sizes[id]) : "";
  };

  function stateOf(id) {
    const p = status["in-progress"][id];
    if (p && p.downloadError) return "failed";
    if (p || status["queued-for-download"].includes(id) || status["queued-for-deletion"].includes(id)) return "working";
    if (status.done.includes(id)) return "done";
    return "available";
  }

  // A readable name: the biggest places of the base map inside the box, else its position.
  function nameOf(id) {
    if (names.has(id)) return names.get(id);
    const bounds = areas()[id];
    if (!bounds) return id;
    const [[s, w], [n, e]] = bounds;
    const loaded = map.getSource("base") ? map.querySourceFeatures("base", { sourceLayer: "places" }) : [];
    const inside = loaded
      .filter((f) => f.properties.min_zoom !== undefined && f.geometry.type === "Point")
      .filter((f) => {
        const [lng, lat] = f.geometry.coordinates;
        return lat >= s && lat <= n && lng >= w && lng <= e;
      });
    const byImportance = (a, b) => (b.properties.population || 0) - (a.properties.population || 0);
    const cities = [...new Set(inside.filter((f) => f.properties.kind === "locality").sort(byImportance).map((f) => f.properties.name))];
    const country = inside.filter((f) => f.properties.kind === "country").sort(byImportance).map((f) => f.properties.name)[0];
    if (cities.length) {
      const name = cities.slice(0, 2).join(", ") + (cities.length > 2 ? " and around" : "");
      names.set(id, name);
      return name;
    }
    const lat = (s + n) / 2;
    const lng = (w + e) / 2;
    return `${country ? country + ": " : ""}area at ${Math.abs(lat).toFixed(1)}° ${lat >= 0 ? "N" : "S"}, ${Math.abs(lng).toFixed(1)}° ${lng >= 0 ? "E" : "W"}`;
  }

  function boxes() {
    return {
      type: "FeatureCollection",
      features: Object.entries(areas()).map(([id, [[s, w], [n, e]]]) => ({
        type: "Feature",
        id,
        properties: { id, state: stateOf(id) },
        geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] },
      })),
    };
  }

  function act(work) {
    return async () => {
      try {
        await work();
        feedback.clear("region");
      } catch (e) {
        feedback.set("region", e.message);
      }
      await refreshStatus();
    };
  }

  const download = (id) => act(() => api.download(id));
  const remove = (id) => act(() => api.deleteRegion(id));

  function progressLine(id, p) {
    const li = el("li", { className: "region working", dataset: { id } }, el("span", { className: "name" }, nameOf(id)));
    if (p.downloadError) {
      li.classList.add("failed");
      li.append(el("p", { className: "error-text" }, p.error || "The download failed."),
        el("div", { className: "row" },
          el("button", { type: "button", className: "retry primary", onclick: download(id) }, "Retry"),
          el("button", { type: "button", className: "remove quiet", onclick: remove(id) }, "Remove")));
      return li;
    }
    let fraction = 0;
    let text = "";
    if (p.phase === "installing") {
      const total = p.searchImportTotal || 0;
      fraction = total ? p.searchImportDone / total : 0;
      text = total
        ? `Adding places to search: ${p.searchImportDone.toLocaleString()} of ${total.toLocaleString()}`
        : "Installing…";
    } else {
      const done = p.bytesDone || 0;
      const total = p.bytesTotal;
      fraction = total ? done / total : p.downloadTotal ? p.downloadDone / p.downloadTotal : 0;
      const speed = p.bytesPerSecond || 0;
      const left = total && speed ? formatDuration((total - done) / speed) : "";
      text = [
        total ? `${formatBytes(done)} of ${formatBytes(total)}` : `${formatBytes(done)} downloaded`,
        speed ? `${formatBytes(speed)}/s` : "",
        left ? `${left} left` : "",
      ].filter(Boolean).join(" · ");
    }
    const percent = Math.round(Math.min(1, fraction) * 100);
    li.append(
      el("div", { className: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": percent, "aria-label": `Progress of ${nameOf(id)}` },
        el("div", { style: `width: ${percent}%` })),
      el("p", { className: "progress-text" }, text),
      el("button", { type: "button", className: "cancel quiet", onclick: remove(id) }, "Cancel"));
    return li;
  }

  function renderLists() {
    const working = $("working");
    const items = [];
    for (const [id, p] of Object.entries(status["in-progress"])) items.push(progressLine(id, p));
    for (const id of status["queued-for-download"]) {
      if (status["in-progress"][id]) continue;
      items.push(el("li", { className: "region queued", dataset: { id } },
        el("span", { className: "name" }, nameOf(id)), el("p", { className: "progress-text" }, "Waiting to download"),
        el("button", { type: "button", className: "cancel quiet", onclick: remove(id) }, "Cancel")));
    }
    for (const id of status["queued-for-deletion"]) {
      items.push(el("li", { className: "region deleting", dataset: { id } }, el("span", { className: "name" }, nameOf(id)), el("p", { className: "progress-text" }, "Being deleted")));
    }
    working.replaceChildren(...items);
    $("working-title").hidden = items.length === 0;

    const done = [...status.done].filter((id) => !status["queued-for-deletion"].includes(id))
      .sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
    // A question being asked (delete?) is not wiped by the next status poll.
    if (!$("downloaded").querySelector(".confirm")) $("downloaded").replaceChildren(...done.map((id) => {
      const button = el("button", { type: "button", className: "delete quiet" }, "Delete");
      button.addEventListener("click", () => confirmInline(button, `Delete ${nameOf(id)}?`, "Delete", remove(id)));
      return el("li", { className: "region done", dataset: { id } },
        el("button", { type: "button", className: "name link", onclick: () => fit(id) }, nameOf(id)),
        size(id) ? el("span", { className: "size" }, size(id)) : null, button);
    }));
    $("downloaded-title").hidden = done.length === 0;
    if ($("delete-all")) $("delete-all").hidden = done.length < 2;
    renderInView();
  }

  function renderInView() {
    const list = $("in-view");
    if (!status || map.getZoom() < BOX_MIN_ZOOM) {
      list.replaceChildren();
      $("in-view-title").hidden = true;
      if (status && status["available-areas"]) $("regions-status").textContent = "Zoom in to see the regions you can download.";
      return;
    }
    const view = map.getBounds();
    const ids = Object.entries(areas())
      .filter(([id, [[s, w], [n, e]]]) => stateOf(id) === "available"
        && n >= view.getSouth() && s <= view.getNorth() && e >= view.getWest() && w <= view.getEast())
      .map(([id]) => id)
      .sort((a, b) => nameOf(a).localeCompare(nameOf(b)))
      .slice(0, MAX_LISTED);
    list.replaceChildren(...ids.map((id) => el("li", { className: "region available", dataset: { id } },
      el("button", { type: "button", className: "name link", onclick: () => fit(id), onmouseenter: () => hover(id), onmouseleave: () => hover(null) }, nameOf(id)),
      size(id) ? el("span", { className: "size" }, size(id)) : null,
      el("button", { type: "button", className: "download primary", "aria-label": `Download ${nameOf(id)}`, onclick: download(id) }, "Download"))));
    $("in-view-title").hidden = ids.length === 0;
    if (status["available-areas"]) {
      $("regions-status").textContent = ids.length
        ? "Pick a region to keep its streets and places in this grain."
        : "No region to download here; move the map or zoom out a little.";
    }
  }

  function fit(id) {
    const [[s, w], [n, e]] = areas()[id];
    map.fitBounds([[w, s], [e, n]], { padding: 40 });
  }

  function hover(id) {
    if (hovered !== null) map.setFeatureState({ source: "areas", id: hovered }, { hover: false });
    hovered = id;
    if (id !== null) map.setFeatureState({ source: "areas", id }, { hover: true });
  }

  function boxPopup(id, lngLat) {
    if (popup) popup.remove();
    const state = stateOf(id);
    const body = el("div", { className: "popup region-popup", dataset: { id } },
      el("h3", {}, nameOf(id)), size(id) ? el("p", {}, size(id)) : null);
    if (state === "available") {
      body.append(el("button", { type: "button", className: "primary download", onclick: () => { popup.remove(); download(id)(); } }, "Download this region"));
    } else if (state === "done") {
      body.append(el("p", {}, "Downloaded."));
    } else if (state === "failed") {
      body.append(el("p", { className: "error-text" }, status["in-progress"][id].error || "The download failed."),
        el("button", { type: "button", className: "primary retry", onclick: () => { popup.remove(); download(id)(); } }, "Retry"));
    } else {
      body.append(el("p", {}, "In progress: see the Regions panel."));
    }
    popup = new maplibregl.Popup({ maxWidth: "280px" }).setLngLat(lngLat).setDOMContent(body).addTo(map);
  }

  map.on("mousemove", "areas-fill", (event) => {
    map.getCanvas().style.cursor = "pointer";
    const id = event.features[0] && event.features[0].id;
    if (id !== hovered) hover(id);
  });
  map.on("mouseleave", "areas-fill", () => {
    map.getCanvas().style.cursor = "";
    hover(null);
  });
  map.on("click", "areas-fill", (event) => {
    const id = event.features[0] && event.features[0].properties.id;
    // The finger lifted after a long-press is also a click: the new bookmark's popup wins.
    if (document.querySelector(".add-popup")) return;
    // A tap on a bookmark's marker reaches the map too: the bookmark's popup wins.
    if (event.originalEvent && event.originalEvent.target.closest && event.originalEvent.target.closest(".maplibregl-marker")) return;
    if (id && canDownload()) boxPopup(id, event.lngLat);
  });
  map.on("moveend", () => {
    if (status && canDownload()) renderInView();
  });

  async function askForAccess() {
    const button = $("powerbox-ask");
    button.disabled = true;
    try {
      const result = await requestMapDataAccess();
      if (result === "granted") {
        accessMessage = null;
        feedback.clear("region");
        await api.fetchRegions();
      } else {
        accessMessage = "No access was given, so regions cannot be downloaded yet. Ask again when you are ready.";
      }
    } catch (e) {
      accessMessage = e.message;
    } finally {
      button.disabled = false;
    }
    await refreshStatus();
  }
  $("powerbox-ask").addEventListener("click", askForAccess);
  $("fetch-regions").addEventListener("click", act(() => api.fetchRegions()));
  $("delete-all").addEventListener("click", () => confirmInline($("delete-all"), "Delete every downloaded region?", "Delete all", remove("all")));

  function renderAccess() {
    const key = accessNeeded(status);
    const box = $("powerbox");
    box.hidden = !key && !accessMessage;
    if (box.hidden) return false;
    $("powerbox-text").textContent = accessMessage
      || (key === "access-withdrawn"
        ? (status["available-areas-error"] || "Access to the map-data server was withdrawn; ask again.")
        : "To download regions, this grain needs your permission to reach the map-data server.");
    $("powerbox-ask").textContent = key === "access-withdrawn" || accessMessage ? "Ask for access again" : "Allow access to the map-data server";
    return true;
  }

  // The boxes the map holds (the style starts with none, and a new style is made with the
  // current ones): each status poll would otherwise send the same boxes to the map's worker
  // again and redraw the whole map (on a phone, battery; at start-up, time the first tiles
  // wait for).
  let shownBoxes = JSON.stringify(emptyAreas());
  function showBoxes(collection) {
    const source = map.getSource("areas");
    const json = JSON.stringify(collection);
    if (!source || json === shownBoxes) return;
    source.setData(collection);
    shownBoxes = json;
  }

  const shownToThisUser = () => (status && canDownload() ? boxes() : emptyAreas());

  let lastDone = null;
  return {
    /**
     * Puts the boxes on the map once its first view is drawn: a source loaded beside the first
     * tiles would cost the map's worker time and a frame of its own before that view is complete.
     */
    addToMap() {
      if (map.getSource("areas")) return;
      const collection = shownToThisUser();
      map.addSource("areas", areaSource(collection));
      shownBoxes = JSON.stringify(collection);
      const firstLabels = map.getStyle().layers.find((layer) => layer.type === "symbol");
      for (const layer of areaLayers()) map.addLayer(layer, firstLabels && firstLabels.id);
    },
    update(next) {
      status = next;
      showBoxes(shownToThisUser());
      if (!canDownload()) return;
      const needsAccess = renderAccess();
      const state = status["available-areas-status"];
      const statusText = $("regions-status");
      $("fetch-regions").hidden = state !== "error" || needsAccess;
      if (state === "started") statusText.textContent = "Fetching the region list…";
      else if (state === "error" && !needsAccess) statusText.textContent = status["available-areas-error"] || "The region list could not be fetched; try again.";
      else if (!status["available-areas"]) statusText.textContent = needsAccess ? "" : "The region list has not been fetched yet.";
      renderLists();
      const done = status.done.join(",");
      if (lastDone !== null && done !== lastDone) onRegionsChanged();
      lastDone = done;
    },
    /** When the panel opens: fetch the region list once if it was never fetched. */
    opened() {
      if (!status || askedForList || status["available-areas"] || accessNeeded(status)) return;
      if (status["available-areas-status"] === "started") return;
      askedForList = true;
      act(() => api.fetchRegions())();
    },
    boxes: shownToThisUser,
    names: () => Object.fromEntries([...names]),
  };
}
