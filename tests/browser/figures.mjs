// Figures of the web client (docs/performance.md), printed, not asserted: first map paint,
// bytes of the first view (compressed, as sent), search keystroke to results shown with a
// 1,000,000-row region installed, and the bundle's size. Real `serve --local`, Debian's
// Chromium, loopback only. Run by scripts/bench/web.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { makeRegion, startMapDataServer } from "./fixtures.mjs";
import { baseMapInstalled, coldPage, startLocalServer, until } from "./shared.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binary = process.env.DESERT_ATLAS_BIN || path.join(root, "target/release/desert-atlas");
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "desert-atlas-figures-"));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function startServer(mapData) {
  return startLocalServer(binary, ["--data-dir", path.join(scratch, "data"), "--assets", path.join(root, "build/assets"),
    "--map-data-url", mapData]);
}

// The bundle.
const web = path.join(root, "build/assets/web");
for (const file of fs.readdirSync(web).filter((f) => /-[A-Z0-9]{8}\.(js|css)$/.test(f))) {
  const raw = fs.statSync(path.join(web, file)).size;
  const gz = fs.statSync(path.join(web, `${file}.gz`)).size;
  console.log(`bundle: ${file.replace(/-[A-Z0-9]{8}/, "")}: ${(raw / 1024).toFixed(0)} KiB, ${(gz / 1024).toFixed(0)} KiB gzip`);
}

const published = path.join(scratch, "map-data");
fs.mkdirSync(published);
const rows = Number(process.env.ROWS || 1000000);
makeRegion({ root, binary, id: "big", town: "Testville", lat: 41.9, lng: 12.5, bounds: [[41.8, 12.4], [42.0, 12.6]], out: published, partSize: 2 << 20, extraRows: rows });
const mapData = await startMapDataServer(published);
const server = await startServer(mapData.url);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking"],
});
try {
  const first = await browser.newPage();
  await first.goto(server.base);
  await until(first, baseMapInstalled, 120000);

  // First view, cold cache each time: time to the first fully drawn map, bytes on the wire.
  const paints = [];
  const bytes = [];
  for (let i = 0; i < 5; i++) {
    const { context, page } = await coldPage(browser, { viewport: { width: 1280, height: 800 } });
    // Every response of the page and of its workers (the map's worker fetches the tiles).
    const finished = [];
    page.on("requestfinished", (request) => finished.push(request));
    await page.goto(server.base);
    await page.waitForSelector("body[data-map-ready=true]", { state: "attached", timeout: 120000 });
    paints.push(Number(await page.getAttribute("body", "data-first-paint-ms")));
    const sizes = await Promise.all(finished.map((request) => request.sizes()));
    bytes.push(sizes.reduce((sum, size) => sum + size.responseHeadersSize + size.responseBodySize, 0));
    if (i === 0) {
      const tiles = finished.filter((request) => request.url().includes("/tiles/") && request.url().includes(".mvt"));
      console.log(`first view: ${finished.length} responses, of them ${tiles.length} tiles`);
    }
    await context.close();
  }
  console.log(`first map paint (navigation start to the first complete draw, 1280x800, cold cache, median of 5): ${median(paints)} ms (all: ${paints.join(", ")})`);
  console.log(`first view, bytes on the wire (compressed, glyphs included, median of 5): ${(median(bytes) / 1024).toFixed(0)} KiB`);

  // A region with `rows` search rows, installed through the real download path.
  await first.evaluate(async () => fetch("/app/download-manifest", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }));
  await until(first, async () => {
    const status = JSON.parse(await (await fetch("/app/map-download-status")).text());
    return Boolean(status["available-areas"]);
  }, 120000);
  const started = Date.now();
  await first.evaluate(async () => fetch("/app/download-map", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ "tile-id": "big" }) }));
  await until(first, async () => {
    const status = JSON.parse(await (await fetch("/app/map-download-status")).text());
    return status.done.includes("big");
  }, 600000);
  console.log(`region of ${rows} search rows downloaded and installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // Keystroke to results shown: from the key event to the list drawn with this query's results.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${server.base}/#5/41.9/12.5`);
  await page.waitForSelector("body[data-map-ready=true]", { state: "attached", timeout: 120000 });
  const times = [];
  const pageShares = [];
  await page.evaluate(() => performance.setResourceTimingBufferSize(10000));
  for (const query of ["s", "sa", "ro", "mon", "ber", "ta", "ka", "te", "via", "del", "ne", "ri", "wa", "gen", "sto", "lin", "ma", "rosa", "tes", "san"]) {
    await page.fill("#search", "");
    await page.keyboard.press("Escape");
    await page.waitForTimeout(200);
    await page.focus("#search");
    // The page's own share: the whole time less the request's, from sending it to the last
    // byte of the answer (the browser's resource timing of this query's request).
    const { ms, answer } = await page.evaluate((q) => new Promise((resolve) => {
      const input = document.getElementById("search");
      input.value = q.slice(0, -1);
      const t0 = performance.now();
      document.addEventListener("search-results", (e) => {
        if (e.detail.query === q) requestAnimationFrame(() => {
          const total = performance.now() - t0;
          const request = performance.getEntriesByType("resource")
            .filter((r) => r.name.includes(`/app/search?q=${encodeURIComponent(q)}&`) && r.startTime >= t0).pop();
          resolve({ ms: total, answer: request ? request.responseEnd - request.startTime : NaN });
        });
      }, { once: true });
      input.value = q;
      input.dispatchEvent(new Event("input"));
    }), query);
    times.push(ms);
    pageShares.push(ms - answer);
  }
  times.sort((a, b) => a - b);
  console.log(`search keystroke to results shown, ${rows} rows installed (20 queries of 1-4 letters): median ${median(times).toFixed(0)} ms, p90 ${times[Math.floor(times.length * 0.9)].toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms`);
  pageShares.sort((a, b) => a - b);
  console.log(`  of which the page's own (keystroke to request sent, plus answer to list drawn): median ${median(pageShares).toFixed(1)} ms, p90 ${pageShares[Math.floor(pageShares.length * 0.9)].toFixed(1)} ms, max ${pageShares[pageShares.length - 1].toFixed(1)} ms`);
} finally {
  await browser.close();
  server.child.kill();
  await mapData.close();
  fs.rmSync(scratch, { recursive: true, force: true });
}
