// Where the first map paint's time goes (docs/performance.md, "Web client"): a cold-cache load
// of the page at 1280×800 in Debian's Chromium (WebGL in software through SwiftShader) against
// the real `serve --local` with the built base map, loopback only. Prints, per load and as
// medians: the page's own milestones (HTML in, script run, map created, style loaded, first
// frame, tiles in, `idle` = the first complete draw), the network waterfall (when each request
// starts and ends, from the browser's own network log, workers' requests included), and the
// CPU time of each thread from a Chromium trace (script compile and run, GPU work, tile
// parsing in the workers, the browser's own pages apart). Prints figures; asserts nothing.
// Run by `scripts/bench/web paint`.
//
// Environment: LOADS (default 5) loads per build; ASSETS=dir1,dir2 builds to compare; TRACE=0
// without the trace (tracing costs CPU); TRACE_DIR=dir keeps the traces; PROFILE=1 adds V8's
// sampling profiler to them; DETAIL=1 prints the map's events and who asked for each frame;
// SETTLE_MS (default 2000) the wait in the opened window before the load (shared.mjs).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { baseMapInstalled, coldPage, startLocalServer, until } from "./shared.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binary = process.env.DESERT_ATLAS_BIN || path.join(root, "target/release/desert-atlas");
const loads = Number(process.env.LOADS || 5);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "desert-atlas-paint-"));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => (x === undefined || Number.isNaN(x) ? "   -" : String(Math.round(x)).padStart(5));

// Several builds of the assets may be compared (ASSETS=dir1,dir2): one server each, the loads
// taking turns between them so that a busy moment of the shared machine hits all alike.
const variants = (process.env.ASSETS || path.join(root, "build/assets")).split(",");

function startServer(assets, n) {
  return startLocalServer(binary, ["--data-dir", path.join(scratch, `data-${n}`), "--assets", assets]);
}

// Runs before the page's own script: notes the time of the map's events from the moment the
// page hands its map to `window.desertAtlasMap` (before any of them can fire).
function recordMapEvents(detail) {
  const marks = {};
  window.__paintMarks = marks;
  const note = (name) => {
    if (!(name in marks)) marks[name] = performance.now();
  };
  let map;
  Object.defineProperty(window, "desertAtlasMap", {
    configurable: true,
    get: () => map,
    set: (value) => {
      map = value;
      note("map created");
      for (const event of ["styledata", "style.load", "load", "render", "idle"]) map.once(event, () => note(event));
      window.__paintFrames = 0;
      window.__paintLog = [];
      map.on("render", () => {
        if (!("idle" in marks)) window.__paintFrames += 1;
        window.__paintLog.push([performance.now(), "render"]);
      });
      map.on("data", (e) => window.__paintLog.push([performance.now(), `${e.dataType}data ${e.sourceId || ""} ${e.tile ? e.tile.tileID.canonical.toString() + " wrap " + e.tile.tileID.wrap : e.sourceDataType || ""}`]));
      // With DETAIL: who asks for each frame, and why the map thought it needed one.
      const repaint = map.triggerRepaint.bind(map);
      if (detail) map.triggerRepaint = () => {
        window.__paintLog.push([performance.now(), `repaint asked: ${(new Error().stack || "").split("\n").slice(2, 6).map((l) => l.trim().replace(/\(.*\)|https?:\S+/g, "")).join(" < ")} [sources ${map._sourcesDirty} style ${map._styleDirty} placement ${map._placementDirty} transitions ${map.style && map.style.hasTransitions()}]`]);
        repaint();
      };
      for (const event of ["resize", "move", "moveend"]) map.on(event, () => window.__paintLog.push([performance.now(), event]));
      map.on("dataloading", (e) => window.__paintLog.push([performance.now(), `${e.dataType}dataloading ${e.sourceId || ""} ${e.tile ? e.tile.tileID.canonical.toString() : ""}`]));
      let tiles = 0;
      map.on("sourcedata", (e) => {
        if (e.tile && e.sourceId === "base") {
          tiles += 1;
          note(tiles === 1 ? "first tile parsed" : "tile parsed (last)");
          marks["tile parsed (last)"] = performance.now();
        }
      });
    },
  });
}

const THREADS = [
  ["CrBrowserMain", "browser"], ["CrRendererMain", "page main"], ["DedicatedWorker", "map worker"],
  ["CrGpuMain", "GPU process (SwiftShader)"], ["VizCompositor", "compositor"],
];
const MAIN_KINDS = ["v8.compileModule", "v8.evaluateModule", "EvaluateScript", "FunctionCall", "ParseHTML",
  "UpdateLayoutTree", "Layout", "Paint", "MajorGC", "MinorGC", "CommandBufferProxyImpl::WaitForGetOffset"];

// CPU time per thread (the time covered by its tasks; tasks may nest) from navigation start to
// the first complete draw, and what the page's main thread spent it on: compiling and running
// script, layout, and waiting for the GPU process (WebGL calls that need an answer).
function summariseTrace(trace, untilMs) {
  const events = trace.traceEvents;
  const names = new Map();
  for (const e of events) {
    if (e.ph === "M" && e.name === "thread_name") names.set(`${e.pid}:${e.tid}`, e.args.name);
  }
  // The page's renderer process is the one running the map's worker.
  const worker = [...names].find(([, name]) => name.startsWith("DedicatedWorker"));
  const pagePid = worker ? Number(worker[0].split(":")[0]) : null;
  const navigation = events.find((e) => e.name === "navigationStart" && e.pid === pagePid);
  if (!navigation) return null;
  const since = navigation.ts;
  const until = since + untilMs * 1000;
  const tasks = {};
  const main = {};
  for (const e of events) {
    if (e.ph !== "X" || !e.dur || e.ts < since || e.ts > until) continue;
    const thread = names.get(`${e.pid}:${e.tid}`) || "";
    let label = (THREADS.find(([prefix]) => thread.startsWith(prefix)) || [])[1];
    if (!label || (label === "map worker" && e.pid !== pagePid)) continue;
    // Other renderers are the browser's own pages (its omnibox popup, when a window opens).
    if (label === "page main" && e.pid !== pagePid) label = "other renderers";
    if (e.name === "ThreadControllerImpl::RunTask" || e.name === "RunTask") {
      (tasks[`${label}|${e.pid}:${e.tid}`] ||= []).push([e.ts, Math.min(until, e.ts + e.dur)]);
    }
    if (label === "page main" && MAIN_KINDS.includes(e.name)) main[e.name] = (main[e.name] || 0) + e.dur / 1000;
  }
  const busy = {};
  for (const [key, spans] of Object.entries(tasks)) {
    const label = key.split("|")[0];
    spans.sort((a, b) => a[0] - b[0]);
    let total = 0;
    let [from, to] = spans[0];
    for (const [a, b] of spans.slice(1)) {
      if (a > to) {
        total += to - from;
        [from, to] = [a, b];
      } else to = Math.max(to, b);
    }
    busy[label] = (busy[label] || 0) + (total + to - from) / 1000;
  }
  return { busy, main };
}

const servers = await Promise.all(variants.map((assets, n) => startServer(assets, n)));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking"],
});
try {
  for (const server of servers) {
    const first = await browser.newPage();
    await first.goto(server.base);
    await until(first, baseMapInstalled, 120000);
    await first.close();
  }

  const runs = variants.map(() => []);
  for (let i = 0; i < loads * variants.length; i++) {
    const v = i % variants.length;
    const server = servers[v];
    const all = runs[v];
    const trace = process.env.TRACE !== "0";
    const { context, page } = await coldPage(browser, { viewport: { width: 1280, height: 800 } });
    await context.addInitScript(recordMapEvents, Boolean(process.env.DETAIL));
    // Every request of the page and of its workers (the map's tiles are fetched by a worker).
    const requests = [];
    page.on("requestfinished", (request) => requests.push(request));
    page.on("requestfailed", (request) => requests.push(request));
    if (trace) {
      await browser.startTracing(page, {
        categories: ["devtools.timeline", "v8", "v8.execute", "toplevel", "blink.user_timing", "disabled-by-default-devtools.timeline", "gpu",
          ...(process.env.PROFILE ? ["disabled-by-default-v8.cpu_profiler"] : [])],
      });
    }
    await page.goto(server.base);
    await page.waitForSelector("body[data-map-ready=true]", { state: "attached", timeout: 120000 });
    const traceBuffer = trace ? await browser.stopTracing() : null;
    if (traceBuffer && process.env.TRACE_DIR) fs.writeFileSync(path.join(process.env.TRACE_DIR, `trace-${v}-${all.length + 1}.json`), traceBuffer);
    const traceData = traceBuffer ? JSON.parse(traceBuffer.toString()) : null;
    const result = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const script = performance.getEntriesByType("resource").find((r) => /\/app-\w+\.js$/.test(r.name));
      return {
        marks: window.__paintMarks,
        frames: window.__paintFrames,
        log: window.__paintLog,
        firstPaint: Number(document.body.dataset.firstPaintMs),
        navStartWall: performance.timeOrigin,
        html: nav.responseEnd,
        domInteractive: nav.domInteractive,
        scriptStart: script && script.fetchStart,
        scriptEnd: script && script.responseEnd,
      };
    });
    const sizes = await Promise.all(requests.map((r) => r.sizes().catch(() => ({ responseBodySize: 0 }))));
    const waterfall = requests.map((r, i) => {
      const t = r.timing();
      const start = t.startTime - result.navStartWall;
      const url = r.url().replace(server.base, "");
      return {
        url: url.length > 70 ? `${url.slice(0, 67)}...` : url,
        start,
        response: t.responseStart >= 0 ? start + t.responseStart : undefined,
        end: t.responseEnd >= 0 ? start + t.responseEnd : undefined,
        bytes: sizes[i].responseBodySize,
      };
    }).filter((r) => !r.url.startsWith("data:")).sort((a, b) => a.start - b.start);
    const cpu = traceData ? summariseTrace(traceData, result.firstPaint) : null;
    all.push({ result, waterfall, cpu });
    console.log(`\nload ${all.length} of ${variants[v]}: first complete draw (idle) ${result.firstPaint} ms`);
    console.log(`  milestones (ms since navigation start): HTML in ${ms(result.html)}, app script fetched ${ms(result.scriptStart)}-${ms(result.scriptEnd)}, DOM interactive ${ms(result.domInteractive)}`);
    for (const [name, t] of Object.entries(result.marks).sort((a, b) => a[1] - b[1])) console.log(`    ${ms(t)}  ${name}`);
    console.log(`  frames the map drew until then: ${result.frames}`);
    if (process.env.DETAIL) for (const [t, what] of result.log.filter(([t]) => t <= result.firstPaint + 1)) console.log(`      ${ms(t)}  ${what}`);
    console.log("  requests (ms since navigation start: start / first byte / end, body bytes):");
    for (const r of waterfall) console.log(`    ${ms(r.start)} ${ms(r.response)} ${ms(r.end)} ${String(r.bytes).padStart(8)}  ${r.url}`);
    if (cpu) {
      console.log("  CPU busy per thread until the first complete draw (ms): " + Object.entries(cpu.busy).map(([k, v]) => `${k} ${Math.round(v)}`).join(", "));
      console.log("  page main thread by kind (ms, nested events overlap): " + Object.entries(cpu.main).map(([k, v]) => `${k} ${Math.round(v)}`).join(", "));
    }
    await context.close();
  }

  for (const [v, all] of runs.entries()) report(variants[v], all);
} finally {
  await browser.close();
  for (const server of servers) server.child.kill();
  fs.rmSync(scratch, { recursive: true, force: true });
}

function report(variant, all) {
  console.log(`\n${variant}: medians over ${all.length} cold loads (ms since navigation start):`);
  console.log(`  first complete draw (idle): ${ms(median(all.map((a) => a.result.firstPaint)))}`);
  console.log(`  HTML in: ${ms(median(all.map((a) => a.result.html)))}; app script fetched by: ${ms(median(all.map((a) => a.result.scriptEnd)))}; DOM interactive: ${ms(median(all.map((a) => a.result.domInteractive)))}`);
  console.log(`  frames the map drew until then: ${median(all.map((a) => a.result.frames))}`);
  const marks = [...new Set(all.flatMap((a) => Object.keys(a.result.marks)))]
    .map((name) => [name, median(all.map((a) => a.result.marks[name]).filter((x) => x !== undefined))])
    .sort((a, b) => a[1] - b[1]);
  for (const [name, t] of marks) console.log(`  ${ms(t)}  ${name}`);
  if (all.every((a) => a.cpu)) {
    const threads = [...new Set(all.flatMap((a) => Object.keys(a.cpu.busy)))];
    console.log("  CPU busy per thread until the first complete draw: " + threads.map((t) => `${t} ${ms(median(all.map((a) => a.cpu.busy[t] || 0))).trim()}`).join(", "));
    const kinds = [...new Set(all.flatMap((a) => Object.keys(a.cpu.main)))];
    console.log("  page main thread by kind: " + kinds.map((k) => `${k} ${ms(median(all.map((a) => a.cpu.main[k] || 0))).trim()}`).join(", "));
  }
}
