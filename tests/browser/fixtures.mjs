// Test fixtures made in code: small regions in the schema real Desert Atlas regions use
// (streets with names and `pmap:kind`, water, a park, buildings, a city), turned into vector
// tiles with geojson-vt and vt-pbf, packed into PMTiles by the project's `pack_tiles` example
// and into a region package by `desert-atlas region pack`; and the map-data server that
// publishes them on loopback, with a rate limit (to watch progress) and a hold (to cancel).

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import geojsonvt from "geojson-vt";
import vtpbf from "vt-pbf";

const lineString = (coords, props) => ({ type: "Feature", properties: props, geometry: { type: "LineString", coordinates: coords } });
const polygon = (ring, props) => ({ type: "Feature", properties: props, geometry: { type: "Polygon", coordinates: [ring] } });
const point = (lng, lat, props) => ({ type: "Feature", properties: props, geometry: { type: "Point", coordinates: [lng, lat] } });
const box = (w, s, e, n) => [[w, s], [e, s], [e, n], [w, n], [w, s]];

/** A small town named `town` centred at lat/lng: its layers as GeoJSON, and its search rows. */
export function town(town, lat, lng, extraRows = 0) {
  const d = 0.02;
  const layers = { earth: [], water: [], landuse: [], buildings: [], roads: [], places: [], pois: [] };
  const rows = [[town, lat, lng]];
  layers.earth.push(polygon(box(lng - 3 * d, lat - 3 * d, lng + 3 * d, lat + 3 * d), { kind: "earth" }));
  layers.water.push(polygon(box(lng - 3 * d, lat - d * 0.3, lng + 3 * d, lat - d * 0.1), { natural: "water", water: "river", name: `${town} River` }));
  layers.landuse.push(polygon(box(lng + d * 0.2, lat + d * 0.2, lng + d * 0.8, lat + d * 0.8), { "pmap:kind": "park", leisure: "park", name: `${town} Park` }));
  for (let i = 0; i < 9; i++) {
    const a = lat - d + (i * d) / 4;
    const b = lng - d + (i * d) / 4;
    const major = i % 4 === 0;
    const props = (name) => ({ name, "pmap:kind": major ? "major_road" : "minor_road", highway: major ? "primary" : "residential" });
    layers.roads.push(lineString([[lng - d, a], [lng + d, a]], props(`${town} Street ${i + 1}`)));
    layers.roads.push(lineString([[b, lat - d], [b, lat + d]], props(`${town} Avenue ${i + 1}`)));
    rows.push([`${town} Street ${i + 1}`, a, lng], [`${town} Avenue ${i + 1}`, lat, b]);
    for (let j = 0; j < 8; j++) {
      const x = lng - d + (j * d) / 4 + d / 40;
      const y = lat - d + (i * d) / 4 + d / 40;
      layers.buildings.push(polygon(box(x, y, x + d / 12, y + d / 12), {}));
    }
  }
  layers.places.push(point(lng, lat, { name: town, place: "city", "pmap:kind": "city", "pmap:rank": 1, population: 100000 }));
  layers.pois.push(point(lng + d / 8, lat + d / 8, { name: `${town} Café`, amenity: "cafe" }));
  rows.push([`${town} Café`, lat + d / 8, lng + d / 8]);
  // Made-up place names around the world, for search at a realistic size (a seeded sequence).
  const syllables = ["san", "ta", "ro", "ma", "via", "del", "mon", "te", "ber", "lin", "sto", "ne", "ka", "ri", "wa", "gen"];
  const kinds = ["Street", "Road", "Café", "School", "Church", "Park", "Station", "Hotel"];
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  for (let i = 0; i < extraRows; i++) {
    const word = syllables[next() % 16] + syllables[next() % 16] + syllables[next() % 16];
    const name = `${word[0].toUpperCase()}${word.slice(1)} ${kinds[next() % 8]}`;
    rows.push([name, ((next() % 120000) / 1000 - 55).toFixed(5), ((next() % 340000) / 1000 - 170).toFixed(5)]);
  }
  return { layers, rows };
}

function tileRange(z, [w, s, e, n]) {
  const x = (lng) => Math.floor(((lng + 180) / 360) * 2 ** z);
  const y = (lat) => {
    const r = (lat * Math.PI) / 180;
    return Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * 2 ** z);
  };
  return { x0: x(w), x1: x(e), y0: y(n), y1: y(s) };
}

/** Writes `dir/<id>.pmtiles` and `<id>.csv` for a town and packs them into `out` as region `id`. */
export function makeRegion({ root, binary, id, town: name, lat, lng, bounds, out, partSize, extraRows = 0 }) {
  const work = fs.mkdtempSync(path.join(out, `.work-${id}-`));
  const { layers, rows } = town(name, lat, lng, extraRows);
  const indexes = Object.fromEntries(Object.entries(layers).map(([layer, features]) => [
    layer, geojsonvt({ type: "FeatureCollection", features }, { maxZoom: 14, indexMaxZoom: 0, tolerance: 3, extent: 4096, buffer: 64 }),
  ]));
  const [[s, w], [n, e]] = bounds;
  for (let z = 0; z <= 14; z++) {
    const { x0, x1, y0, y1 } = tileRange(z, [w, s, e, n]);
    for (let x = x0; x <= x1; x++) {
      for (let y = y0; y <= y1; y++) {
        const tile = {};
        for (const [layer, index] of Object.entries(indexes)) {
          const t = index.getTile(z, x, y);
          if (t && t.features.length) tile[layer] = t;
        }
        if (!Object.keys(tile).length) continue;
        fs.mkdirSync(path.join(work, "tiles", `${z}`, `${x}`), { recursive: true });
        fs.writeFileSync(path.join(work, "tiles", `${z}`, `${x}`, `${y}.mvt`), vtpbf.fromGeojsonVt(tile, { version: 2 }));
      }
    }
  }
  const metadata = {
    name: `${name} (test region)`,
    attribution: "Test data",
    vector_layers: Object.keys(layers).map((layer) => ({ id: layer, fields: {} })),
  };
  fs.writeFileSync(path.join(work, "metadata.json"), JSON.stringify(metadata));
  fs.writeFileSync(path.join(work, "search.csv"), ["name,lat,lng", ...rows.map((r) => r.join(","))].join("\n") + "\n");
  const packTiles = path.join(root, "target/debug/examples/pack_tiles");
  execFileSync(packTiles, [path.join(work, "tiles"), path.join(work, "metadata.json"), path.join(work, "tiles.pmtiles")], { stdio: "ignore" });
  execFileSync(binary, ["region", "pack", "--id", id, "--tiles", path.join(work, "tiles.pmtiles"),
    "--search", path.join(work, "search.csv"), "--out", out, "--part-size", String(partSize),
    "--bounds", `${s},${w},${n},${e}`], { stdio: "ignore" });
  fs.rmSync(work, { recursive: true, force: true });
}

/**
 * The map-data server: static files of `dir` on loopback. `rate` (bytes per second) slows
 * every answer; a file whose name starts with an id in `held` is not answered until
 * `release(id)`.
 */
export function startMapDataServer(dir, { rate = 0 } = {}) {
  const held = new Map();
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const name = decodeURIComponent(new URL(req.url, "http://x").pathname).split("/").pop();
    requests.push(name);
    const file = path.join(dir, name);
    if (!name || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    for (const [id, gate] of held) {
      if (name.startsWith(id) && name !== "manifest.json") await gate.promise;
    }
    const body = fs.readFileSync(file);
    res.writeHead(200, { "Content-Length": body.length, "Content-Type": "application/octet-stream" });
    if (!rate || name === "manifest.json") {
      res.end(body);
      return;
    }
    const chunk = 8192;
    for (let at = 0; at < body.length && !res.destroyed; at += chunk) {
      res.write(body.subarray(at, at + chunk));
      await new Promise((r) => setTimeout(r, (chunk / rate) * 1000));
    }
    res.end();
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://127.0.0.1:${server.address().port}/`,
    requests,
    hold(id) {
      let release;
      const promise = new Promise((r) => { release = r; });
      held.set(id, { promise, release });
    },
    release(id) {
      const gate = held.get(id);
      if (gate) {
        held.delete(id);
        gate.release();
      }
    },
    close: () => new Promise((r) => { for (const [id] of held) this.release(id); server.closeAllConnections(); server.close(r); }),
  })));
}
