// The map's style. Two views of the server's one merged tile source:
// - "base": zoom 0–6, where every tile holds the base map (world outlines, countries, cities)
//   merged with whatever regions cover it; overzoomed past 6 so the outlines stay under the
//   regions at every zoom;
// - "regions": zoom 7 up to the deepest downloaded region (re-read from TileJSON after each
//   download or delete), overzoomed beyond it.
// Region layers follow the schema of Desert Atlas regions (tilemaker with the protomaps
// config: `pmap:kind`, `pmap:rank`, OSM tags) with fallbacks to plain `kind`/`highway`, so
// newer builds that differ a little still draw. Labels use the glyph ranges built from Noto
// Sans at asset-build time (served beside the page); CJK is drawn with the browser's fonts.

export const BASE_MAX_ZOOM = 6;
export const FONT = ["Noto Sans Regular"];
export const FONT_BOLD = ["Noto Sans Bold"];
// Water and state names are told apart by colour, not by an italic font (one stack less to ship).
export const FONT_ITALIC = FONT;

const kind = ["coalesce", ["get", "pmap:kind"], ["get", "kind"], ""];
const kindIn = (...kinds) => ["in", kind, ["literal", kinds]];
const tagIn = (tag, ...values) => ["in", ["coalesce", ["get", tag], ""], ["literal", values]];
const name = ["coalesce", ["get", "name"], ""];
const hasName = ["!=", name, ""];

// Road class: pmap:kind when the tiles carry it, else from the OSM highway tag.
const roadClass = ["match", ["coalesce", ["get", "pmap:kind"], ["get", "kind"], ""],
  "highway", "highway", "major_road", "major", "medium_road", "medium", "minor_road", "minor",
  ["match", ["coalesce", ["get", "highway"], ""],
    ["motorway", "motorway_link", "trunk", "trunk_link"], "highway",
    ["primary", "primary_link", "secondary", "secondary_link"], "major",
    ["tertiary", "tertiary_link"], "medium",
    ["residential", "unclassified", "living_street", "road", "service", "pedestrian"], "minor",
    "path"],
];

const COLORS = {
  water: "#aad3df",
  land: "#f2efe9",
  park: "#c8e6b0",
  wood: "#add19e",
  urban: "#e8e3dc",
  industrial: "#e9dcea",
  building: "#d9d0c9",
  buildingLine: "#c4b8ae",
  highway: "#f3a35c",
  highwayCase: "#c7743a",
  major: "#fcd68a",
  majorCase: "#c9a050",
  medium: "#ffffff",
  minor: "#ffffff",
  roadCase: "#c8bfb4",
  path: "#c4ab96",
  rail: "#8c8c8c",
  boundary: "#8d7aa5",
  label: "#333333",
  halo: "rgba(255,255,255,0.9)",
  waterLabel: "#3d6f8c",
};

const exp = (stops) => ["interpolate", ["exponential", 1.5], ["zoom"], ...stops.flat()];

/**
 * The style for the given source zoom range: `regionsMaxZoom` is TileJSON's `maxzoom`;
 * `covered` the downloaded regions' [west, south, east, north] (TileJSON's `region_bounds`).
 * `areas` the region boxes, or null to leave them out (the first view; see regions.addToMap).
 * `bookmarks` the bookmarks' points for their names, or null to leave them out (the first view;
 * see bookmarks.addToMap).
 */
export function mapStyle({ origin, regionsMaxZoom, version, areas, bookmarks = null, covered = [] }) {
  const tiles = [`${origin}/tiles/{z}/{x}/{y}.mvt?v=${encodeURIComponent(version)}`];
  const sources = {
    base: { type: "vector", tiles, minzoom: 0, maxzoom: BASE_MAX_ZOOM },
  };
  if (areas) sources.areas = areaSource(areas);
  if (bookmarks) sources.bookmarks = bookmarkSource(bookmarks);
  const hasRegions = regionsMaxZoom > BASE_MAX_ZOOM;
  if (hasRegions) {
    sources.regions = { type: "vector", tiles, minzoom: BASE_MAX_ZOOM + 1, maxzoom: regionsMaxZoom };
  }
  const split = BASE_MAX_ZOOM + 1;
  // No background layer: the sea is the map element's own background (SEA, set by main.js),
  // seen where no land is drawn; a layer would be one more pass over the whole screen in
  // every frame.
  const layers = [
    fill("base-earth", "base", "earth", COLORS.land),
    ...regionLayers("lo", "base", 0, split),
    ...(hasRegions ? regionLayers("hi", "regions", split, 24) : []),
    ...boundaryLayers("base", "base"),
    ...(areas ? areaLayers() : []),
    ...labelLayers("lo", "base", 0, split),
    ...(hasRegions ? labelLayers("hi", "regions", split, 24) : []),
    ...basePlaceLabels(covered),
    ...(bookmarks ? bookmarkLayers() : []),
  ];
  return {
    version: 8,
    name: "Desert Atlas",
    // Nothing on this map is animated by paint transitions; without them a newly loaded style
    // is not redrawn for 300 ms of frames that change nothing (three frames before the first
    // tiles in software rendering).
    transition: { duration: 0, delay: 0 },
    glyphs: `${origin}${glyphsPath()}/{fontstack}/{range}.pbf`,
    sources,
    layers,
  };
}

/** The glyph directory beside the page: its name carries a hash (set by the build). */
export function glyphsPath() {
  const meta = document.querySelector('meta[name="glyphs"]');
  return "/" + ((meta && meta.content) || "fonts");
}

export function emptyAreas() {
  return { type: "FeatureCollection", features: [] };
}

function fill(id, source, layer, color, filter, extra = {}) {
  return {
    id, type: "fill", source, "source-layer": layer,
    ...(filter ? { filter } : {}),
    ...extra,
    paint: { "fill-color": color, ...(extra.paint || {}) },
  };
}

function line(id, source, layer, paint, filter, extra = {}) {
  return {
    id, type: "line", source, "source-layer": layer,
    ...(filter ? { filter } : {}),
    layout: { "line-join": "round", "line-cap": "round", ...(extra.layout || {}) },
    ...(extra.minzoom !== undefined ? { minzoom: extra.minzoom } : {}),
    paint,
  };
}

function zoomed(layers, minzoom, maxzoom) {
  return layers.map((l) => ({
    ...l,
    minzoom: Math.max(minzoom, l.minzoom || 0),
    maxzoom: Math.min(maxzoom, l.maxzoom || 24),
  })).filter((l) => l.minzoom < l.maxzoom);
}

function regionLayers(suffix, source, minzoom, maxzoom) {
  const id = (name) => `${name}-${suffix}`;
  const road = (cls) => ["==", roadClass, cls];
  const isRail = ["any", kindIn("rail"), tagIn("railway", "rail", "light_rail", "narrow_gauge", "subway", "tram")];
  const roadWidth = (base) => exp([[5, base * 0.25], [10, base], [14, base * 3], [18, base * 12]]);
  const roads = [
    ["path", COLORS.path, 0.4, 15],
    ["minor", COLORS.minor, 1, 12],
    ["medium", COLORS.medium, 1.4, 10],
    ["major", COLORS.major, 1.8, 7],
    ["highway", COLORS.highway, 2.2, 5],
  ];
  const casings = roads.filter(([cls]) => cls !== "path").map(([cls, , width, from]) => line(
    id(`road-${cls}-casing`), source, "roads",
    {
      "line-color": cls === "highway" ? COLORS.highwayCase : cls === "major" ? COLORS.majorCase : COLORS.roadCase,
      "line-width": ["interpolate", ["exponential", 1.5], ["zoom"], 5, width * 0.25 + 0.5, 10, width + 1, 14, width * 3 + 1.5, 18, width * 12 + 3],
      "line-opacity": ["interpolate", ["linear"], ["zoom"], from, 0, from + 1, 1],
    },
    road(cls), { minzoom: from },
  ));
  const strokes = roads.map(([cls, color, width, from]) => line(
    id(`road-${cls}`), source, "roads",
    { "line-color": color, "line-width": roadWidth(width), ...(cls === "path" ? { "line-dasharray": [2, 1.5] } : {}) },
    road(cls), { minzoom: from },
  ));
  return zoomed([
    // On the base source `base-earth` draws the land at every zoom already; a second layer of
    // the same features would make the map's worker cut the world's coastlines twice.
    ...(source === "base" ? [] : [fill(id("earth"), source, "earth", COLORS.land)]),
    fill(id("landuse-urban"), source, "landuse", COLORS.urban,
      ["any", kindIn("residential", "commercial", "retail", "school", "university", "hospital"),
        tagIn("landuse", "residential", "commercial", "retail")]),
    fill(id("landuse-industrial"), source, "landuse", COLORS.industrial,
      ["any", kindIn("industrial", "railway"), tagIn("landuse", "industrial", "railway")]),
    fill(id("landuse-park"), source, "landuse", COLORS.park,
      ["any", kindIn("park", "garden", "cemetery", "golf_course", "nature_reserve", "playground", "pitch", "grass"),
        tagIn("leisure", "park", "garden", "pitch", "playground", "golf_course", "nature_reserve"),
        tagIn("landuse", "grass", "cemetery", "recreation_ground", "meadow", "village_green")]),
    fill(id("land-park"), source, "land", COLORS.park,
      ["any", kindIn("park", "garden", "cemetery", "grass"), tagIn("leisure", "park", "garden"), tagIn("landuse", "grass", "cemetery")]),
    fill(id("natural-wood"), source, "natural", COLORS.wood,
      ["any", kindIn("wood", "forest"), tagIn("natural", "wood"), tagIn("landuse", "forest")]),
    fill(id("natural-other"), source, "natural", COLORS.park,
      ["!", ["any", kindIn("wood", "forest", "glacier", "sand", "beach"), tagIn("natural", "wood", "sand", "beach", "glacier", "water"), tagIn("landuse", "forest")]],
      { paint: { "fill-opacity": 0.7 } }),
    fill(id("natural-sand"), source, "natural", "#f5e9c6",
      ["any", kindIn("sand", "beach"), tagIn("natural", "sand", "beach")]),
    fill(id("water"), source, "water", COLORS.water),
    line(id("waterway"), source, "physical_line",
      { "line-color": COLORS.water, "line-width": exp([[8, 0.5], [14, 2], [18, 6]]) },
      ["any", kindIn("waterway", "river", "stream", "canal"), ["has", "waterway"]]),
    fill(id("buildings"), source, "buildings", COLORS.building, null,
      { minzoom: 13, paint: { "fill-outline-color": COLORS.buildingLine, "fill-opacity": ["interpolate", ["linear"], ["zoom"], 13, 0, 14, 1] } }),
    ...casings,
    ...strokes,
    line(id("rail"), source, "transit",
      { "line-color": COLORS.rail, "line-width": exp([[8, 0.6], [14, 1.5], [18, 3]]) }, isRail),
    line(id("rail-roads"), source, "roads",
      { "line-color": COLORS.rail, "line-width": exp([[8, 0.6], [14, 1.5], [18, 3]]), "line-dasharray": [3, 3] },
      tagIn("railway", "rail", "light_rail", "subway", "tram")),
    // Up to the base map's last zoom its own layers (boundaryLayers) draw country and state
    // lines, from any tile: a second, dashed line under them would only cost the first view.
    ...(minzoom > BASE_MAX_ZOOM ? [line(id("boundaries"), source, "boundaries",
      { "line-color": COLORS.boundary, "line-width": 0.8, "line-dasharray": [3, 2] },
      ["<=", ["coalesce", ["get", "pmap:min_admin_level"], ["get", "admin_level"], 10], 4])] : []),
  ], minzoom, maxzoom);
}

function boundaryLayers(suffix, source) {
  return [
    line(`state-lines-${suffix}`, source, "boundaries",
      { "line-color": COLORS.boundary, "line-width": exp([[2, 0.4], [8, 1.2]]), "line-dasharray": [3, 2], "line-opacity": 0.7 },
      ["any", kindIn("region"), ["==", ["get", "admin_level"], 4]], { minzoom: 3 }),
    line(`country-lines-${suffix}`, source, "boundaries",
      { "line-color": COLORS.boundary, "line-width": exp([[1, 0.6], [8, 2]]) },
      ["any", kindIn("country"), ["==", ["get", "admin_level"], 2]]),
  ];
}

/** The bookmarks as points (`label` each, the name as drawn), for their labels. */
export function bookmarkSource(collection) {
  return { type: "geojson", data: collection };
}

/** The image that keeps a bookmark's marker clear of labels: as big as the marker's dot, and
 * empty (the dot itself is the page's marker, which can be tapped and focused). */
export const BOOKMARK_SPACE = { id: "bookmark-space", width: 22, height: 22 };

/**
 * Bookmarks' names, drawn by the map rather than beside the markers, so that they and the
 * map's own labels make room for each other. The layer is the style's last, so it is placed
 * first: a city's name gives way to a bookmark's name over it, never the other way round.
 */
export function bookmarkLayers() {
  return [{
    id: "bookmark-labels", type: "symbol", source: "bookmarks",
    layout: {
      "icon-image": BOOKMARK_SPACE.id, "icon-allow-overlap": true,
      "text-field": ["get", "label"], "text-font": FONT_BOLD, "text-size": 12, "text-max-width": 12,
      "text-variable-anchor": ["left", "right", "top", "bottom"], "text-radial-offset": 1, "text-justify": "auto",
      "text-optional": true,
    },
    paint: haloed("#5b1610"),
  }];
}

/** The region boxes' source; `areaLayers` draw it. */
export function areaSource(areas) {
  return { type: "geojson", data: areas, promoteId: "id" };
}

// Region boxes of the region list: shown when zoomed in enough to pick one.
export function areaLayers() {
  const state = ["coalesce", ["feature-state", "state"], ["get", "state"]];
  const color = ["match", state, "done", "#2e8b57", "working", "#d98c1f", "failed", "#c0392b", "#3a7bd5"];
  return [
    {
      id: "areas-fill", type: "fill", source: "areas", minzoom: 4,
      paint: {
        "fill-color": color,
        "fill-opacity": ["case", ["boolean", ["feature-state", "hover"], false], 0.3, ["==", state, "done"], 0.12, 0.06],
      },
    },
    {
      id: "areas-line", type: "line", source: "areas", minzoom: 4,
      paint: { "line-color": color, "line-width": ["case", ["boolean", ["feature-state", "hover"], false], 3, 1.2] },
    },
  ];
}

const haloed = (color, halo = COLORS.halo) => ({
  "text-color": color, "text-halo-color": halo, "text-halo-width": 1.4, "text-halo-blur": 0.4,
});

function labelLayers(suffix, source, minzoom, maxzoom) {
  const id = (name) => `${name}-${suffix}`;
  const rank = ["coalesce", ["get", "pmap:rank"], ["get", "rank"], 10];
  const population = ["coalesce", ["to-number", ["get", "population"]], 0];
  const place = ["coalesce", ["get", "place"], ""];
  // Region places (the base map's own have `min_zoom`; they are drawn by basePlaceLabels).
  const regionPlace = ["!", ["has", "min_zoom"]];
  const placeMinZoom = ["match", place,
    ["city"], 4, ["town"], 8, ["village"], 11, ["suburb"], 11, ["hamlet", "neighbourhood", "quarter"], 13,
    ["match", kind, ["city"], 4, ["town"], 8, ["neighbourhood"], 13, 15]];
  return zoomed([
    {
      id: id("water-labels"), type: "symbol", source, "source-layer": "water", minzoom: 12,
      filter: hasName,
      layout: { "text-field": name, "text-font": FONT_ITALIC, "text-size": 12, "symbol-placement": "point", "text-max-width": 8 },
      paint: haloed(COLORS.waterLabel),
    },
    {
      id: id("waterway-labels"), type: "symbol", source, "source-layer": "physical_line", minzoom: 12,
      filter: hasName,
      layout: { "text-field": name, "text-font": FONT_ITALIC, "text-size": 12, "symbol-placement": "line", "symbol-spacing": 400 },
      paint: haloed(COLORS.waterLabel),
    },
    {
      id: id("road-labels"), type: "symbol", source, "source-layer": "roads", minzoom: 13,
      filter: ["all", hasName, ["!=", roadClass, "path"]],
      layout: {
        "text-field": name, "text-font": FONT, "symbol-placement": "line", "text-rotation-alignment": "map",
        "text-size": ["interpolate", ["linear"], ["zoom"], 13, 10, 17, 13],
        "symbol-sort-key": ["match", roadClass, "highway", 0, "major", 1, "medium", 2, 3],
      },
      paint: haloed("#4a4a4a"),
    },
    {
      id: id("poi-dots"), type: "circle", source, "source-layer": "pois", minzoom: 15,
      filter: hasName,
      paint: { "circle-radius": 3, "circle-color": "#a05a2c", "circle-stroke-color": "#fff", "circle-stroke-width": 1 },
    },
    {
      id: id("poi-labels"), type: "symbol", source, "source-layer": "pois", minzoom: 15,
      filter: hasName,
      layout: {
        "text-field": name, "text-font": FONT, "text-size": 11, "text-anchor": "top", "text-offset": [0, 0.5],
        "text-max-width": 8, "text-optional": true,
      },
      paint: haloed("#7a4420"),
    },
    {
      id: id("place-labels"), type: "symbol", source, "source-layer": "places",
      filter: ["all", hasName, regionPlace, [">=", ["zoom"], placeMinZoom]],
      layout: {
        "text-field": name,
        "text-font": ["match", place, ["city", "town"], ["literal", FONT_BOLD], ["literal", FONT]],
        "text-size": ["match", place, "city", 16, "town", 14, "village", 12, ["match", kind, "city", 16, 11]],
        "text-max-width": 8,
        "symbol-sort-key": ["-", ["*", rank, 1e9], population],
      },
      paint: haloed(COLORS.label),
    },
  ], minzoom, maxzoom);
}

// The base map's countries, states and cities (from the overzoomed base tiles). A city's name
// stays at every zoom where no downloaded region is: zoomed in over an area without one, the
// map is bare land, and the name says where it is. Inside a region, from the zoom its own
// tiles start, the region's labels take over (no second "Rome" a few streets away).
function basePlaceLabels(covered) {
  const population = ["coalesce", ["to-number", ["get", "population"]], 0];
  const baseKind = ["coalesce", ["get", "kind"], ""];
  const outsideRegions = covered.length === 0 ? true : ["any",
    ["<", ["zoom"], BASE_MAX_ZOOM + 1],
    ["!", ["within", {
      type: "MultiPolygon",
      coordinates: covered.map(([w, s, e, n]) => [[[w, s], [e, s], [e, n], [w, n], [w, s]]]),
    }]],
  ];
  return [
    {
      id: "base-country-labels", type: "symbol", source: "base", "source-layer": "places", maxzoom: 8,
      filter: ["all", ["has", "min_zoom"], ["==", baseKind, "country"], hasName],
      layout: {
        "text-field": name, "text-font": FONT_BOLD, "text-transform": "uppercase", "text-letter-spacing": 0.08,
        "text-size": ["interpolate", ["linear"], ["zoom"], 1, 10, 5, 15], "text-max-width": 7,
        "symbol-sort-key": ["-", population],
      },
      paint: haloed("#5a4d6b"),
    },
    {
      id: "base-state-labels", type: "symbol", source: "base", "source-layer": "places", minzoom: 4, maxzoom: 9,
      filter: ["all", ["has", "min_zoom"], ["==", baseKind, "region"], hasName],
      layout: { "text-field": name, "text-font": FONT_ITALIC, "text-size": 11, "text-max-width": 7 },
      paint: haloed("#7d6b8f"),
    },
    {
      id: "base-city-dots", type: "circle", source: "base", "source-layer": "places", maxzoom: 7,
      filter: ["all", ["has", "min_zoom"], ["==", baseKind, "locality"], [">=", ["zoom"], ["get", "min_zoom"]]],
      paint: { "circle-radius": 2.5, "circle-color": "#444", "circle-stroke-color": "#fff", "circle-stroke-width": 1 },
    },
    {
      id: "base-city-labels", type: "symbol", source: "base", "source-layer": "places",
      filter: ["all", ["has", "min_zoom"], ["==", baseKind, "locality"], hasName, [">=", ["zoom"], ["get", "min_zoom"]], outsideRegions],
      layout: {
        "text-field": name, "text-font": FONT,
        // Bigger for bigger cities, and growing as the map zooms in past the base map's detail.
        "text-size": ["interpolate", ["linear"], ["zoom"],
          6, ["interpolate", ["linear"], population, 15000, 11, 1000000, 13, 5000000, 15],
          14, ["interpolate", ["linear"], population, 15000, 14, 1000000, 17, 5000000, 20]],
        "text-anchor": ["step", ["zoom"], "left", 7, "center"], "text-offset": ["step", ["zoom"], ["literal", [0.5, 0]], 7, ["literal", [0, 0]]],
        "text-max-width": 8,
        "symbol-sort-key": ["-", population],
      },
      paint: haloed(COLORS.label),
    },
  ];
}

/** The sea: the map element's background, under every layer (the style has no background). */
export const SEA = COLORS.water;
