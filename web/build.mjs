// Bundles the page with esbuild: one minified JS (the app and MapLibre GL JS) and one CSS,
// both named by a hash of their content so browsers may keep them for good; index.html is
// written with those names and with the glyph directory's hashed name.
//
// Usage: node build.mjs OUT_DIR GLYPH_DIR_NAME

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const [out, glyphs] = process.argv.slice(2);
if (!out || !glyphs) {
  console.error("usage: node build.mjs OUT_DIR GLYPH_DIR_NAME");
  process.exit(2);
}

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: "src/main.js", style: "src/app.css" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022", "chrome100", "firefox100", "safari16"],
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  outdir: path.resolve(out),
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});

const names = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint) names[meta.entryPoint] = path.basename(file);
}
const html = fs.readFileSync(path.join(here, "index.html"), "utf8")
  .replace('href="app.css"', `href="${names["src/app.css"]}"`)
  .replace('src="main.js"', `src="${names["src/main.js"]}"`)
  .replace('<meta name="glyphs" content="fonts">', `<meta name="glyphs" content="${glyphs}">`)
  .replaceAll('href="fonts/', `href="${glyphs}/`);
if (html.includes('"app.css"') || html.includes('"main.js"') || html.includes('"fonts/') || !html.includes(glyphs)) {
  throw new Error("index.html: could not put the hashed names in");
}
fs.writeFileSync(path.resolve(out, "index.html"), html);
fs.copyFileSync(path.join(here, "favicon.svg"), path.resolve(out, "favicon.svg"));
console.error(`build-web: ${Object.values(names).join(", ")}`);
