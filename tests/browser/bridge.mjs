// What stands between the browser and the grain in Sandstorm, for the browser tests (docs/api.md
// §3, docs/grain.md):
// - the front: the page's files (nginx's job inside a grain) and the API passed to the server,
//   every answer with Sandstorm's content security policy, and for a role the X-Sandstorm-*
//   headers sandstorm-http-bridge adds (a client's own are dropped, and so is Range);
// - the bridge's HTTP proxy (what the grain's HTTP_PROXY names): the Powerbox claim
//   (`POST http://http-bridge/session/<id>/claim` → `{"cap": token}`) and requests with
//   `Authorization: Bearer <token>` passed to the granted map-data server by path; a revoked
//   or unknown token answers 403.
// Both are small on purpose: the Rust tests' fake bridge (tests/it/bridge.rs) is the same
// contract; this one lives here so the browser suite needs nothing but Node to run it.

import fs from "node:fs";
import http from "node:http";
import path from "node:path";

/**
 * The policy Sandstorm sends with app content when its server enforces one
 * (ALLOW_LEGACY_RELAXED_CSP=false; src/sandstorm/web-session-bridge.c++: default-src 'none',
 * scripts, styles and fonts from 'self', connect-src 'self'), made stricter where the page
 * promises more (no inline script or style, no eval, images only from itself) and with one
 * difference: Sandstorm's strict policy says `worker-src 'none'`, and MapLibre cannot draw
 * without its web worker (made from a blob: URL), so workers from blob: are allowed here (one
 * test runs under the strict policy itself, STRICT_CSP, and sees the page explain the blank
 * map). With the default (relaxed) setting Sandstorm sends no such policy at all.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "font-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self'",
  "connect-src 'self'",
  "worker-src blob:",
  "child-src 'self' blob:",
  "frame-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
].join("; ");

/**
 * Sandstorm's strict policy word for word (src/sandstorm/web-session-bridge.c++, sent when the
 * server sets ALLOW_LEGACY_RELAXED_CSP=false), with its hosts: no web worker may start.
 */
export const STRICT_CSP = "default-src 'none'; webrtc 'block'; "
  + ["img-src *", "media-src *", "script-src 'self'", "style-src 'self'", "child-src 'self'", "font-src 'self'", "frame-src 'self'"]
    .map((directive) => `${directive} 'unsafe-inline' 'unsafe-eval' data: blob:; `).join("")
  + "worker-src 'none';connect-src 'self' ;";

// The package's roles (.sandstorm/sandstorm-pkgdef.capnp) and an anonymous visitor.
export const ROLES = {
  owner: "download,bookmarks",
  bookmarker: "bookmarks",
  viewer: "",
  anonymous: "",
};

/**
 * The headers sandstorm-http-bridge sends the app for `role` (a key of ROLES) as `user`, a
 * name that also makes the user's id (32 hex digits, as Sandstorm's), so each user of a test
 * has their own tutorial state.
 */
export function bridgeHeaders(role, user = role) {
  const permissions = ROLES[role];
  const userId = role === "anonymous" ? null : Buffer.from(user).toString("hex").padEnd(32, "0").slice(0, 32);
  return {
    "x-sandstorm-username": encodeURIComponent(userId ? `Test ${user}` : "Anonymous User"),
    ...(userId ? { "x-sandstorm-user-id": userId } : {}),
    "x-sandstorm-permissions": permissions,
    "x-sandstorm-session-id": `session-${user}`,
    "x-sandstorm-tab-id": `tab-${user}`,
    connection: "close",
  };
}

const TYPES = { html: "text/html", js: "application/javascript", css: "text/css", svg: "image/svg+xml", ico: "image/x-icon", pbf: "application/x-protobuf", txt: "text/plain" };

function listen(server, closers) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    closers.push(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));
    resolve(server.address().port);
  }));
}

/**
 * The front on a loopback port; resolves to its origin. `backend` gets the API paths (every
 * path when there is no `dir`); `dir`'s files are served with their .gz siblings (as nginx's
 * gzip_static); `role` (a key of ROLES) adds the bridge's headers for that role as `user`;
 * `csp: false` leaves the policy out (for the stand-in of Sandstorm's shell only); a string is
 * the policy sent instead of CSP.
 */
export async function startFront({ backend = null, dir = null, role = null, user = role, csp = true, closers }) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const policy = csp ? { "Content-Security-Policy": typeof csp === "string" ? csp : CSP } : {};
    if (backend && (!dir || /^\/(app|app-go|tiles)\//.test(url.pathname))) {
      const headers = {};
      for (const [name, value] of Object.entries(req.headers)) {
        // The page's own Host goes through, as nginx and the bridge pass it: the server
        // refuses a post whose Origin names another host.
        if (role && (name.startsWith("x-sandstorm-") || name === "range" || name === "connection")) continue;
        headers[name] = value;
      }
      if (role) Object.assign(headers, bridgeHeaders(role, user));
      const upstream = http.request(new URL(req.url, backend), { method: req.method, headers }, (answer) => {
        const back = { ...answer.headers, ...policy };
        if (role) delete back["content-range"];
        res.writeHead(answer.statusCode, back);
        answer.pipe(res);
      });
      upstream.on("error", () => res.writeHead(502, policy).end());
      req.pipe(upstream);
      return;
    }
    if (!dir) return res.writeHead(404, policy).end();
    let file = path.join(dir, decodeURIComponent(url.pathname));
    if (!file.startsWith(dir)) return res.writeHead(403, policy).end();
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
    if (!fs.existsSync(file)) return res.writeHead(404, policy).end();
    const headers = { "Content-Type": TYPES[path.extname(file).slice(1)] || "application/octet-stream", ...policy };
    if (/gzip/.test(req.headers["accept-encoding"] || "") && fs.existsSync(`${file}.gz`)) {
      headers["Content-Encoding"] = "gzip";
      file = `${file}.gz`;
    }
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  return `http://127.0.0.1:${await listen(server, closers)}`;
}

/**
 * The bridge's proxy on a loopback port, granting access to `canonicalUrl` (the map-data
 * server's origin as the grain names it) and passing granted requests to `target` (where that
 * server really listens). `grant(session)` is what the Powerbox hands the page when the user
 * allows access in `session`: a claim token. `revokeAll()` is the user revoking every grant.
 */
export async function startBridgeProxy({ canonicalUrl, target, closers }) {
  const claimable = new Map(); // claim token → session it was granted in
  const granted = new Set();
  const revoked = new Set();
  const seen = [];
  let next = 0;
  const answer = (res, status, text) => res.writeHead(status, { "Content-Type": "text/plain" }).end(text);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url);
    const bearer = (/^Bearer (.+)$/.exec(req.headers.authorization || "") || [])[1] || null;
    seen.push({ method: req.method, target: req.url, bearer });
    if (url.host === "http-bridge") {
      const session = (/^\/session\/([^/]+)\/claim$/.exec(url.pathname) || [])[1];
      if (!session || req.method !== "POST") return answer(res, 404, "no such bridge endpoint");
      let body = "";
      for await (const chunk of req) body += chunk;
      let request = {};
      try {
        request = JSON.parse(body);
      } catch {
        return answer(res, 400, "the claim is not JSON");
      }
      if (JSON.stringify(request.requiredPermissions) !== '["download"]') {
        return answer(res, 400, "requiredPermissions must name the permission the grant needs");
      }
      // A claim token is redeemed once, by the session it was granted in.
      if (claimable.get(request.requestToken) !== session) {
        return answer(res, 403, "the claim token is invalid or was already used");
      }
      claimable.delete(request.requestToken);
      const cap = `access-${++next}`;
      granted.add(cap);
      return res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ cap }));
    }
    if (!bearer) return answer(res, 502, "this grain has no network access without a Powerbox grant");
    if (!granted.has(bearer) || revoked.has(bearer)) return answer(res, 403, "the capability was revoked");
    if (`${url.protocol}//${url.host}` !== canonicalUrl.replace(/\/$/, "")) {
      return answer(res, 502, `this grant is for ${canonicalUrl}, not ${url.host}`);
    }
    // Only the path (and query) is kept; Range and every other request header are dropped.
    const upstream = http.get(new URL(url.pathname + url.search, target), (back) => {
      const headers = {};
      for (const name of ["content-type", "content-length", "etag", "last-modified"]) {
        if (back.headers[name]) headers[name] = back.headers[name];
      }
      res.writeHead(back.statusCode, headers);
      back.pipe(res);
    });
    upstream.on("error", (e) => answer(res, 502, e.message));
    res.on("close", () => upstream.destroy());
  });
  const port = await listen(server, closers);
  return {
    url: `http://127.0.0.1:${port}/`,
    seen,
    grant(session) {
      const token = `claim-${++next}`;
      claimable.set(token, session);
      return token;
    },
    revokeAll() {
      for (const cap of granted) revoked.add(cap);
    },
  };
}
