// The development profile (tools/run → --parley.dev), the demo's endpoints and
// the Socket.IO client bundle Parley serves as a Node server does.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { api, connect, emitWithAck, recorder, startParley, withTimeout } from "./harness.mjs";

const DIST = new URL("./node_modules/socket.io-client/dist/", import.meta.url);
const VERSION = JSON.parse(readFileSync(new URL("./node_modules/socket.io-client/package.json", import.meta.url))).version;

// The profile's own secret and key: the harness's defaults are taken out.
const DEV = ["--parley.dev", '--parley.auth.jwt-secret=""', '--parley.api.key=""'];

describe("the development profile", () => {
  let P, key, tok;
  before(async () => {
    P = await startParley(DEV);
    // The four lines, in this order, each exactly.
    await withTimeout(
      (async () => {
        while (!/^demo: /m.test(P.stdout ?? "")) await new Promise((r) => setTimeout(r, 20));
      })(),
      5000,
      "the demo line",
    );
  });
  after(async () => {
    if (P) assert.equal(await P.stop(), 0);
  });

  it("prints the address, a key, a token and the demo's URL, each on its own line", () => {
    const lines = P.stdout.trim().split("\n");
    assert.equal(lines.length, 4, P.stdout);
    const m0 = /^parley listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(lines[0]);
    assert.ok(m0, lines[0]);
    assert.equal(m0[1], P.url);
    const m1 = /^dev api key: ([0-9a-f]{32})$/.exec(lines[1]);
    assert.ok(m1, lines[1]);
    key = m1[1];
    const m2 = /^dev token \(user "dev", every room\): ([\w-]+\.[\w-]+\.[\w-]+)$/.exec(lines[2]);
    assert.ok(m2, lines[2]);
    tok = m2[1];
    const claims = JSON.parse(Buffer.from(tok.split(".")[1], "base64url").toString());
    assert.equal(claims.sub, "dev");
    assert.deepEqual(claims.rooms, ["*"]);
    assert.equal(lines[3], `demo: ${P.url}/demo`);
  });

  it("the key opens the backend API and the token any room", async () => {
    const s = await connect(P.url, "/", { transports: ["websocket"], auth: { token: tok } });
    const rec = recorder(s);
    assert.deepEqual(await emitWithAck(s, "join", { room: "chat:anything" }), { joined: "chat:anything", userId: "dev" });
    const r = await api(P.url, "POST", "/api/v1/publish", { room: "chat:anything", event: "news", data: { n: 1 } }, { key });
    assert.equal(r.status, 200, r.text);
    await rec.waitFor("news", 1);
    const wrong = await api(P.url, "POST", "/api/v1/publish", { room: "r", event: "e" });
    assert.equal(wrong.status, 401); // the harness's key is not this run's
    s.close();
  });

  it("browsers on localhost and 127.0.0.1, any port, get CORS; others do not", async () => {
    for (const origin of ["http://localhost:5173", "http://127.0.0.1:8080", "http://localhost"]) {
      const res = await fetch(`${P.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("access-control-allow-origin"), origin);
      await res.text();
    }
    for (const origin of ["http://example.com", "http://localhost.example.com:80", "https://localhost:5173"]) {
      const res = await fetch(`${P.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
      assert.equal(res.headers.get("access-control-allow-origin"), null, origin);
      await res.text();
    }
  });

  it("/demo is a page that loads the served client; /demo/token gives a token for a name", async () => {
    const page = await fetch(`${P.url}/demo`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    const html = await page.text();
    assert.match(html, /<script src="\/socket\.io\/socket\.io\.js"><\/script>/);
    const t = await (await fetch(`${P.url}/demo/token?user=alice`)).json();
    const claims = JSON.parse(Buffer.from(t.token.split(".")[1], "base64url").toString());
    assert.equal(claims.sub, "alice");
    const s = await connect(P.url, "/", { transports: ["websocket"], auth: { token: t.token } });
    s.close();
    const bad = await fetch(`${P.url}/demo/token`);
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: { code: "invalid_query", message: "user must be 1 to 64 characters" } });
  });
});

describe("outside the development profile", () => {
  it("no /demo, and the profile refuses an address beyond this machine", async () => {
    const P = await startParley([]);
    const res = await fetch(`${P.url}/demo`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { code: "not_found", message: "No route for /demo" } });
    assert.equal(P.stdout.trim().split("\n").length, 1);
    assert.equal(await P.stop(), 0);
    const r = await startParley(["--parley.dev", "--parley.http.address=0.0.0.0"], { expectExit: true });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      "parley: parley.dev serves this machine only: parley.http.address must be 127.0.0.1, ::1 or localhost, not 0.0.0.0",
    );
  });
});

describe("the Socket.IO client bundle, as a Node server serves it", () => {
  let P;
  before(async () => {
    P = await startParley([]);
  });
  after(async () => {
    if (P) assert.equal(await P.stop(), 0);
  });

  for (const name of ["socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.msgpack.min.js",
                      "socket.io.js.map", "socket.io.min.js.map", "socket.io.esm.min.js.map"]) {
    it(`/socket.io/${name}`, async () => {
      const res = await fetch(`${P.url}/socket.io/${name}`);
      assert.equal(res.status, 200);
      const map = name.endsWith(".map");
      assert.equal(res.headers.get("content-type"), `application/${map ? "json" : "javascript"}; charset=utf-8`);
      assert.equal(res.headers.get("etag"), `"${VERSION}"`);
      assert.equal(res.headers.get("cache-control"), "public, max-age=0");
      const body = Buffer.from(await res.arrayBuffer());
      assert.ok(body.equals(readFileSync(new URL(name, DIST))), `${name}: not the npm package's file`);
    });
  }

  it("If-None-Match with the version (strong or weak) → 304; a query string is ignored", async () => {
    for (const tag of [`"${VERSION}"`, `W/"${VERSION}"`]) {
      const res = await fetch(`${P.url}/socket.io/socket.io.min.js?v=1`, { headers: { "if-none-match": tag } });
      assert.equal(res.status, 304);
      assert.equal((await res.text()).length, 0);
    }
    const old = await fetch(`${P.url}/socket.io/socket.io.min.js`, { headers: { "if-none-match": '"4.0.0"' } });
    assert.equal(old.status, 200);
    await old.arrayBuffer();
  });

  it("other names under /socket.io/ are Engine.IO's", async () => {
    const res = await fetch(`${P.url}/socket.io/socket.io.debug.js`);
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 0, message: "Transport unknown" });
  });
});
