// Search as you type: a combobox (WAI-ARIA 1.2 pattern) over a listbox of places. Queries
// are debounced (the first key at once) and the previous one aborted, and each carries the view's centre and zoom so
// the server ranks near or important places first (docs/api.md §6). Picking a result flies
// there, drops a marker and opens a popup offering "Add bookmark".

import { api } from "./api.js";
import { $, el, feedback, formatLatLng } from "./ui.js";

// The first key after a pause searches at once; keys typed faster than this are gathered
// into one query sent when typing pauses.
const DEBOUNCE_MS = 120;

export function setupSearch({ map, maplibregl, canBookmark, addBookmarkPopup, onPicked }) {
  const input = $("search");
  const list = $("results");
  let results = [];
  let active = -1;
  let timer = null;
  let inFlight = null;
  let marker = null;
  let lastQuery = "";
  let lastKey = 0;
  // The base map's state from the status: "preparing" while a new grain imports its places.
  let baseMap = "ready";

  function open(isOpen) {
    list.hidden = !isOpen;
    input.setAttribute("aria-expanded", String(isOpen));
    if (!isOpen) setActive(-1);
  }

  function setActive(index) {
    active = index;
    for (const [i, li] of [...list.children].entries()) {
      li.setAttribute("aria-selected", String(i === index));
      if (i === index) li.scrollIntoView({ block: "nearest" });
    }
    if (index >= 0) input.setAttribute("aria-activedescendant", `result-${index}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function render(query) {
    list.replaceChildren();
    if (results.length === 0) {
      list.append(el("li", { className: "empty", role: "option", "aria-disabled": "true" }, baseMap === "preparing"
        ? `Nothing found for “${query}” yet: the world's place names are still being prepared. Results will show here in a moment.`
        : `Nothing found for “${query}”. Downloaded regions add streets and places.`));
    }
    results.forEach((place, i) => {
      list.append(el("li", {
        id: `result-${i}`, role: "option", className: "result", "aria-selected": "false",
        onmousedown: (event) => event.preventDefault(),
        onclick: () => pick(i),
      }, el("span", { className: "title" }, place.title),
      el("span", { className: "where" }, place.tile_id === "base-map" ? "Base map" : "Downloaded region")));
    });
    open(true);
  }

  async function run(query) {
    if (inFlight) inFlight.abort();
    if (!query.trim()) {
      results = [];
      open(false);
      return;
    }
    const controller = new AbortController();
    inFlight = controller;
    const c = map.getCenter().wrap();
    const started = performance.now();
    try {
      const found = await api.search(query, c.lat, c.lng, map.getZoom(), controller.signal);
      if (controller.signal.aborted || input.value !== query) return;
      results = found;
      render(query);
      feedback.clear("search");
      list.dataset.ms = String(Math.round(performance.now() - started));
      document.dispatchEvent(new CustomEvent("search-results", { detail: { query, count: found.length } }));
    } catch (e) {
      if (e.name === "AbortError") return;
      feedback.set("search", e.message);
    } finally {
      if (inFlight === controller) inFlight = null;
    }
  }

  function pick(index) {
    const place = results[index];
    if (!place) return;
    const [lat, lng] = place.loc;
    open(false);
    input.value = place.title;
    if (marker) marker.remove();
    const content = el("div", { className: "popup" },
      el("h3", {}, place.title),
      el("p", { className: "coords" }, formatLatLng(lat, lng)),
      canBookmark() ? el("button", {
        type: "button", className: "primary add-from-search",
        onclick: () => { marker.getPopup().remove(); addBookmarkPopup(lng, lat, place.title); },
      }, "Add bookmark") : null);
    marker = new maplibregl.Marker({ color: "#3a7bd5", className: "search-marker" })
      .setLngLat([lng, lat])
      .setPopup(new maplibregl.Popup({ offset: 30, maxWidth: "280px" }).setDOMContent(content))
      .addTo(map);
    map.flyTo({ center: [lng, lat], zoom: place.tile_id === "base-map" ? 10 : 16, essential: true });
    map.once("moveend", () => {
      if (!marker.getPopup().isOpen()) marker.togglePopup();
    });
    onPicked();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const query = input.value;
    if (query === lastQuery) return;
    lastQuery = query;
    const now = performance.now();
    const typingFast = now - lastKey < DEBOUNCE_MS;
    lastKey = now;
    if (typingFast) timer = setTimeout(() => run(query), DEBOUNCE_MS);
    else run(query);
  });
  input.addEventListener("keydown", (event) => {
    const count = results.length;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (list.hidden && count) open(true);
      setActive(count ? (active + 1) % count : -1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive(count ? (active - 1 + count) % count : -1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (active >= 0) pick(active);
      else if (!list.hidden && count) pick(0);
      else {
        clearTimeout(timer);
        run(input.value);
      }
    } else if (event.key === "Escape") {
      if (!list.hidden) {
        event.preventDefault();
        open(false);
      } else {
        input.value = "";
        lastQuery = "";
        results = [];
      }
    }
  });
  input.addEventListener("blur", () => setTimeout(() => open(false), 150));
  input.addEventListener("focus", () => {
    if (results.length && input.value) open(true);
  });

  return {
    /** The status's `base-map`; once the places are in, a search that found nothing runs again. */
    baseMapIs(state) {
      const wasPreparing = baseMap === "preparing";
      baseMap = state || "ready";
      if (wasPreparing && baseMap !== "preparing" && input.value.trim() && results.length === 0) run(input.value);
    },
  };
}
