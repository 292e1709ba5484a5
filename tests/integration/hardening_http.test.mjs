// HTTP hardening: oversized header or trailer fields, a request line that is
// not HTTP, unknown methods and methods a route does not take, and JSON nested
// too deep in an API body. Each answer is the JSON error the backend API gives
// ({"error":{"code","message"}}), and the server goes on serving.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { api, startParley, withParley } from "./harness.mjs";
import { rawHttp } from "./hardening_wire.mjs";

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const HEADER_TOO_LARGE =
  '{"error":{"code":"header_too_large","message":"The request\'s header fields (or a chunked body\'s trailer fields) exceed 16384 bytes"}}';

// The server still answers /health on a new connection, and is running.
async function stillServing(p = parley) {
  const res = await fetch(p.url + "/health");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ok" });
  assert.equal(p.child.exitCode, null);
}


// Asserts a refusal that ends the connection: status, JSON body, Connection:
// close, and the server closing the connection after it.
async function assertClosingRefusal({ response, closed }, status, body) {
  assert.ok(response, "the server closed the connection without answering");
  assert.equal(response.status, status);
  assert.equal(response.headers["content-type"], "application/json");
  assert.equal(response.headers.connection, "close");
  assert.equal(response.body, body);
  assert.equal(await closed, true);
}

describe("oversized fields", () => {
  it("a chunked body's trailer field of 65,534 bytes → 431 header_too_large, Connection: close; the server lives on", async () => {
    const trailer = `X-Trailer: ${"t".repeat(65534)}`;
    const req = `GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${trailer}\r\n\r\n`;
    await withParley([], async (p) => {
      await assertClosingRefusal(await rawHttp(p.url, req), 431, HEADER_TOO_LARGE);
      await stillServing(p);
    });
  });

  it("a header field of 20,000 bytes → the same 431", async () => {
    const req = `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"h".repeat(20000)}\r\n\r\n`;
    await assertClosingRefusal(await rawHttp(parley.url, req), 431, HEADER_TOO_LARGE);
    await stillServing();
  });
});

describe("malformed requests and methods", () => {
  it("a request line that is not HTTP → 400 bad_request with Beast's reason, Connection: close", async () => {
    const req = "GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n";
    await assertClosingRefusal(
      await rawHttp(parley.url, req),
      400,
      '{"error":{"code":"bad_request","message":"Malformed HTTP request: bad version"}}',
    );
    await stillServing();
  });

  it("an unknown method → 501 not_implemented, and the connection goes on", async () => {
    // Two requests in one write: the second is answered on the same connection.
    const { responses, destroy } = await rawHttp(
      parley.url,
      "FOO /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
      { count: 2 },
    );
    destroy();
    assert.equal(responses.length, 2);
    const [foo, health] = responses;
    assert.equal(foo.status, 501);
    assert.equal(foo.headers["content-type"], "application/json");
    assert.equal(foo.headers.connection, undefined);
    assert.equal(foo.body, '{"error":{"code":"not_implemented","message":"Method FOO is not implemented"}}');
    assert.equal(health.status, 200);
    assert.equal(health.body, '{"status":"ok"}');
  });

  for (const path of ["/health", "/metrics"]) {
    it(`POST ${path} → 405 method_not_allowed with Allow: GET`, async () => {
      const { response, destroy } = await rawHttp(
        parley.url,
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}`,
      );
      destroy();
      assert.equal(response.status, 405);
      assert.equal(response.headers.allow, "GET");
      assert.equal(response.headers["content-type"], "application/json");
      assert.equal(response.body, `{"error":{"code":"method_not_allowed","message":"Use GET for ${path}"}}`);
      // GET still works on the same route.
      assert.equal((await fetch(parley.url + path)).status, 200);
    });
  }
});

describe("JSON nested too deep in an API body", () => {
  const nest = (n) => "[".repeat(n) + "]".repeat(n);
  const publish = (levels, p = parley) =>
    api(p.url, "POST", "/api/v1/publish", undefined, {
      raw: `{"room":"r:deep","event":"e","data":${nest(levels)}}`,
    });
  const TOO_DEEP = { error: { code: "invalid_json", message: "Malformed JSON: nesting deeper than 64 levels" } };

  it("data nested 150,000 levels → 400 invalid_json; the server lives on", async () => {
    await withParley([], async (p) => {
      const res = await publish(150000, p);
      assert.equal(res.status, 400);
      assert.deepEqual(res.json, TOO_DEEP);
      await stillServing(p);
    });
  });

  it("data nested 70 levels → the same 400; 60 levels → 200", async () => {
    const deep = await publish(70);
    assert.equal(deep.status, 400);
    assert.deepEqual(deep.json, TOO_DEEP);
    const fine = await publish(60);
    assert.equal(fine.status, 200);
    assert.deepEqual(Object.keys(fine.json), ["ok", "id", "offset"]); // stored
  });

  it("the limit is 64 levels, the body's object included: data at 63 → 200, at 64 → 400", async () => {
    const at64 = await publish(63); // {"data":[…63…]}: 64 levels
    assert.equal(at64.status, 200);
    assert.deepEqual(Object.keys(at64.json), ["ok", "id", "offset"]); // stored
    const at65 = await publish(64);
    assert.equal(at65.status, 400);
    assert.deepEqual(at65.json, TOO_DEEP);
  });
});
