// Browser tests: the web client in Debian's Chromium (driven by playwright-core) against the
// real `desert-atlas serve --local`, started here on a free port with a fresh data dir.
// Prints "N passed, N failed" and exits non-zero on any failure.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { PNG } from "pngjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binary = process.env.DESERT_ATLAS_BIN || path.join(root, "target/debug/desert-atlas");
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "desert-atlas-browser-"));
const shots = process.env.SCREENSHOT_DIR || os.tmpdir();

function startServer() {
  const child = spawn(binary, [
    "serve", "--local", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
    "--assets", path.join(root, "build/assets"),
  ], { env: { ...process.env, SANDSTORM: "" }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30000);
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve({ child, base: match[1], log: () => log });
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
}

const results = [];
async function check(name, body) {
  try {
    await body();
    results.push([name, true]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const server = await startServer();
process.on("exit", () => server.child.kill());
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  // Playwright gives the browser a fresh, empty profile of its own.
});
const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
const foreign = [];
page.on("request", (request) => {
  const url = new URL(request.url());
  if (!["data:", "blob:"].includes(url.protocol) && url.origin !== server.base) foreign.push(request.url());
});
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));

try {
  await check("the page loads and draws the world map", async () => {
    await page.goto(`${server.base}/#2/30/0`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
    // The base map installs in the background at first start; wait for its tiles.
    await page.waitForFunction(async () => {
      const r = await fetch("/tiles/tiles.json");
      return (await r.json()).regions.includes("base-map");
    }, null, { timeout: 30000, polling: 200 });
    await page.evaluate(() => window.desertAtlasMap.getSource("atlas").setTiles([`${location.origin}/tiles/{z}/{x}/{y}.mvt?reload=1`]));
    await page.waitForFunction(() => window.desertAtlasMap.loaded() && window.desertAtlasMap.areTilesLoaded(), null, { timeout: 30000 });
    await page.waitForTimeout(500);
    const shot = await page.screenshot({ path: path.join(shots, "map.png") });
    const png = PNG.sync.read(shot);
    const colors = new Set();
    for (let y = 50; y < 750; y += 25) {
      for (let x = 50; x < 850; x += 25) {
        const i = (png.width * y + x) * 4;
        colors.add(`${png.data[i] >> 3},${png.data[i + 1] >> 3},${png.data[i + 2] >> 3}`);
      }
    }
    assert(colors.size >= 3, `the map looks blank (${colors.size} colours)`);
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join("; ")}`);
  });

  await check("search lists places nearest the map centre", async () => {
    await page.fill("#search", "paris");
    await page.press("#search", "Enter");
    await page.waitForSelector("#results li.result", { timeout: 10000 });
    const titles = await page.$$eval("#results li.result", (lis) => lis.map((li) => li.textContent));
    assert(titles.includes("Paris, France"), `results: ${titles.slice(0, 5).join(" | ")}`);
  });

  await check("a bookmark can be added, renamed and deleted", async () => {
    await page.fill("#bookmark-name", "Picnic & <friends>");
    await page.click("#bookmark-form button");
    await page.waitForSelector("#bookmarks li.bookmark", { timeout: 10000 });
    let names = await page.$$eval("#bookmarks li .name", (els) => els.map((e) => e.textContent));
    assert(names.length === 1 && names[0] === "Picnic & <friends>", `after adding: ${names}`);
    page.once("dialog", (dialog) => dialog.accept("Lunch"));
    await page.click("#bookmarks li .rename");
    await page.waitForFunction(() => document.querySelector("#bookmarks li .name")?.textContent === "Lunch", null, { timeout: 10000 });
    const stored = await page.evaluate(async () => (await fetch("/app/bookmarks")).json());
    const values = Object.values(stored);
    assert(values.length === 1 && values[0].name === "Lunch" && values[0].version === 1, JSON.stringify(stored));
    await page.click("#bookmarks li .delete");
    await page.waitForFunction(() => document.querySelectorAll("#bookmarks li").length === 0, null, { timeout: 10000 });
  });

  await check("a refused bookmark shows the server's sentence", async () => {
    await page.fill("#bookmark-name", "   ");
    await page.click("#bookmark-form button");
    await page.waitForSelector("#message.error:not([hidden])", { timeout: 10000 });
    const text = await page.textContent("#message");
    assert(/name/.test(text), `message: ${text}`);
  });

  await check("the export link answers a KMZ archive", async () => {
    const href = await page.getAttribute("#export", "href");
    const bytes = await page.evaluate(async (url) => {
      const r = await fetch(url);
      return [r.status, r.headers.get("content-type"), Array.from(new Uint8Array(await r.arrayBuffer()).slice(0, 2))];
    }, href);
    assert(bytes[0] === 200 && bytes[1] === "application/vnd.google-earth.kmz", JSON.stringify(bytes));
    assert(bytes[2][0] === 0x50 && bytes[2][1] === 0x4b, "not a zip");
  });

  await check("the owner sees the download panel and the tutorial", async () => {
    assert(await page.isVisible("#fetch-regions"), "no download button");
    assert(await page.isVisible("#tutorial"), "no tutorial");
    await page.click("#tutorial-next");
    await page.waitForSelector("#tutorial", { state: "hidden", timeout: 10000 });
    const status = await page.evaluate(async () => (await fetch("/app/map-download-status")).json());
    assert(status["tutorial-mode"] === "TUTORIAL_DONE", JSON.stringify(status));
  });

  await check("the page contacts no other origin", async () => {
    assert(foreign.length === 0, `requests elsewhere: ${foreign.join(", ")}`);
  });
} finally {
  await browser.close();
  server.child.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

const passed = results.filter(([, ok]) => ok).length;
const failed = results.length - passed;
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && results.length > 0 ? 0 : 1);
