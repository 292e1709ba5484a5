// The backend API's own errors: keys, bodies, routes; /health and /metrics.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { API_KEY, api, startParley } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

describe("authorization", () => {
  it("401 without a key", async () => {
    const r = await api(parley.url, "POST", "/api/v1/publish", { room: "r", event: "e" }, { key: null });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: { code: "unauthorized", message: "Missing API key" } });
  });
  it("401 with a wrong key", async () => {
    const r = await api(parley.url, "POST", "/api/v1/publish", { room: "r", event: "e" }, { key: "nope" });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: { code: "unauthorized", message: "Invalid API key" } });
  });
  it("401 for a key one byte short, one byte long, or with its last byte changed; 200 for the key", async () => {
    const near = [API_KEY.slice(0, -1), `${API_KEY}x`, `${API_KEY.slice(0, -1)}X`, "", ` ${API_KEY}`];
    for (const key of near) {
      const r = await api(parley.url, "GET", "/api/v1/presence/u1", undefined, { key });
      assert.equal(r.status, 401, JSON.stringify(key));
      assert.deepEqual(r.json, { error: { code: "unauthorized", message: "Invalid API key" } });
    }
    assert.equal((await api(parley.url, "GET", "/api/v1/presence/u1", undefined, { key: API_KEY })).status, 200);
  });
  it("403 when the API has no key configured", async () => {
    const p = await startParley(['--parley.api.key=""']);
    try {
      const r = await api(p.url, "POST", "/api/v1/publish", { room: "r", event: "e" });
      assert.equal(r.status, 403);
      assert.deepEqual(r.json, { error: { code: "api_disabled", message: "The backend API is disabled: set parley.api.key" } });
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});

describe("bodies", () => {
  it("400 naming a JSON syntax error", async () => {
    const r = await api(parley.url, "POST", "/api/v1/publish", undefined, { raw: '{"room": "r",' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "invalid_json");
    assert.match(r.json.error.message, /^Malformed JSON: .+ at offset \d+$/);
  });
  it("400 naming a missing field", async () => {
    const r = await api(parley.url, "POST", "/api/v1/publish", { event: "e" });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error: { code: "invalid_payload", message: "Invalid payload for api.publish: room is required" } });
  });
  it("400 for an unexpected field", async () => {
    const r = await api(parley.url, "POST", "/api/v1/publish", { room: "r", event: "e", extra: 1 });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error: { code: "invalid_payload", message: "Invalid payload for api.publish: unexpected property extra" } });
  });
  it("400 for broadcast without rooms", async () => {
    const r = await api(parley.url, "POST", "/api/v1/broadcast", { event: "e" });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error: { code: "invalid_payload", message: "Invalid payload for api.broadcast: rooms is required" } });
  });
  it("405 for a wrong method, 404 for an unknown route", async () => {
    const r = await api(parley.url, "GET", "/api/v1/publish");
    assert.equal(r.status, 405);
    assert.deepEqual(r.json, { error: { code: "method_not_allowed", message: "Use POST for /api/v1/publish" } });
    const n = await api(parley.url, "GET", "/api/v1/nothing");
    assert.equal(n.status, 404);
    assert.deepEqual(n.json, { error: { code: "not_found", message: "No route for /api/v1/nothing" } });
  });
});

describe("health and metrics", () => {
  it("/health needs no key", async () => {
    const r = await api(parley.url, "GET", "/health", undefined, { key: null });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: "ok" });
  });
  it("/metrics is Prometheus text with the counters", async () => {
    const r = await api(parley.url, "GET", "/metrics", undefined, { key: null });
    assert.equal(r.status, 200);
    for (const name of ["parley_connections", "parley_rooms", "parley_packets_in_total", "parley_packets_out_total",
      "parley_fanout_deliveries_total", "parley_slow_clients_dropped_total"]) {
      assert.match(r.text, new RegExp(`^${name} \\d+$`, "m"), name);
    }
  });
});
