// What the browser suite (run.mjs) and the figure scripts (figures.mjs, paint-breakdown.mjs)
// share: waiting on a condition in a page, and starting the server in local mode.

import { spawn } from "node:child_process";

// Waits until `condition` (run in the page) comes true. Not `page.waitForFunction`: that takes
// the promise an async condition returns for a true answer, and would not wait at all. The
// error a condition throws is kept, so a wait that gives up says what it last read.
export async function until(page, condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = "it stayed false";
  for (;;) {
    if (await page.evaluate(condition).catch((e) => { last = e.message; return false; })) return;
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${timeoutMs} ms (${last}) for ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// `binary serve --local` on a free loopback port with `args` added; resolves to the process and
// the address it prints once it listens.
export function startLocalServer(binary, args) {
  const child = spawn(binary, ["serve", "--local", "--listen", "127.0.0.1:0", ...args],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, SANDSTORM: "" } });
  let log = "";
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (c) => {
      log += c;
      // The whole line: a chunk can end inside the address.
      const m = /listening on (http:\/\/\S+)\n/.exec(log);
      if (m) resolve({ child, base: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
}

// A page in a new browser context (an empty cache), on about:blank once the new window has
// settled. Chromium starts work of its own with each window (its omnibox popup's WebUI
// renderer took 0.68 s of CPU at once, on a machine of two cores): a figure for loading the
// page should not carry the opening of the window. SETTLE_MS overrides the wait.
export async function coldPage(browser, contextOptions) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  await page.goto("about:blank");
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.SETTLE_MS ?? 2000)));
  return { context, page };
}

// Run in a page: whether the grain's base map is installed. An answer that is not TileJSON is
// an error naming the page and the answer, for `until` to report.
export async function baseMapInstalled() {
  const answer = await fetch("/tiles/tiles.json");
  const text = await answer.text();
  try {
    return JSON.parse(text).regions.includes("base-map");
  } catch {
    throw new Error(`${location.href}: /tiles/tiles.json answered ${answer.status}: ${text.slice(0, 200)}`);
  }
}
