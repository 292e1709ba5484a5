// socket.io-client 4.8 over each transport and namespace, acks, and the
// Engine.IO error answers a Node server gives.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { connect, emitWithAck, recorder, startParley, token, withTimeout } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley(["--parley.engineio.ping-interval=300ms", "--parley.engineio.ping-timeout=200ms"]);
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const grant = { sub: "u1", rooms: ["conversation:*"] };

for (const [name, opts] of [
  ["websocket only", { transports: ["websocket"] }],
  ["polling only", { transports: ["polling"] }],
  ["polling with upgrade", { transports: ["polling", "websocket"] }],
]) {
  describe(name, () => {
    for (const nsp of ["/", "/messages"]) {
      it(`connects to ${nsp}, joins a conversation and gets its ack`, async () => {
        const s = await connect(parley.url, nsp, { ...opts, auth: { token: token(grant) } });
        try {
          if (name === "polling with upgrade") {
            await withTimeout(
              new Promise((resolve) => {
                if (s.io.engine.transport.name === "websocket") resolve();
                else s.io.engine.once("upgrade", resolve);
              }),
              5000,
              "the upgrade",
            );
            assert.equal(s.io.engine.transport.name, "websocket");
          } else {
            assert.equal(s.io.engine.transport.name, opts.transports[0]);
          }
          const rec = recorder(s);
          const reply = await emitWithAck(s, "conversation:join", { conversationId: "c1" });
          assert.deepEqual(reply, { conversationId: "c1", success: true });
          const [joined] = await rec.waitFor("conversation:joined");
          assert.deepEqual(joined.args, [{ conversationId: "c1", success: true }]);
        } finally {
          s.close();
        }
      });
    }
    it("keeps the connection over several heartbeats", async () => {
      const s = await connect(parley.url, "/", { ...opts, auth: { token: token(grant) } });
      try {
        // Four of the server's pings (300 ms apart), each answered by the client:
        // a missed pong would have closed the session after the 200 ms timeout.
        let pings = 0;
        await withTimeout(new Promise((r) => s.io.on("ping", () => ++pings === 4 && r())), 5000, "four pings");
        assert.equal(s.connected, true);
        const reply = await emitWithAck(s, "conversation:join", { conversationId: 7 });
        assert.deepEqual(reply, { conversationId: 7, success: true });
      } finally {
        s.close();
      }
    });
  });
}

describe("several namespaces on one Engine.IO session", () => {
  it("multiplexes / and /messages over one connection", async () => {
    const a = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token(grant) } });
    const b = a.io.socket("/messages", { auth: { token: token(grant) } });
    try {
      await withTimeout(new Promise((r) => b.once("connect", r)), 5000, "second namespace");
      assert.equal(a.io.engine, b.io.engine);
      assert.deepEqual(await emitWithAck(b, "subscribe", { conversationId: "m" }), {
        conversationId: "m",
        success: true,
      });
      assert.deepEqual(await emitWithAck(a, "subscribe", { conversationId: "n" }), {
        conversationId: "n",
        success: true,
      });
    } finally {
      a.io.engine.close();
    }
  });

  it("refuses an unknown namespace with Invalid namespace", async () => {
    const { io } = await import("socket.io-client");
    const s = io(parley.url + "/nope", { reconnection: false, forceNew: true, transports: ["websocket"] });
    const err = await withTimeout(new Promise((r) => s.once("connect_error", r)), 5000, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    s.close();
  });
});

describe("Engine.IO errors", () => {
  const cases = [
    ["/socket.io/?EIO=4&transport=abc", 400, { code: 0, message: "Transport unknown" }],
    ["/socket.io/?EIO=4&transport=polling&sid=nope", 400, { code: 1, message: "Session ID unknown" }],
    ["/socket.io/?EIO=3&transport=polling", 400, { code: 5, message: "Unsupported protocol version" }],
    ["/socket.io/?EIO=4&transport=websocket", 400, { code: 3, message: "Bad request" }],
  ];
  for (const [path, status, body] of cases) {
    it(`GET ${path} → ${status} ${body.message}`, async () => {
      const res = await fetch(parley.url + path);
      assert.equal(res.status, status);
      assert.deepEqual(await res.json(), body);
    });
  }
  it("POST without a sid → 400 Bad handshake method", async () => {
    const res = await fetch(parley.url + "/socket.io/?EIO=4&transport=polling", { method: "POST", body: "x" });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 2, message: "Bad handshake method" });
  });
  it("closes a WebSocket whose message passes maxPayload, with close code 1009", async () => {
    const p = await (await import("./harness.mjs")).startParley(["--parley.engineio.max-payload=1000"]);
    try {
      const ws = new WebSocket(p.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket");
      const first = await withTimeout(new Promise((r) => ws.once("message", r)), 5000, "open packet");
      assert.match(first.toString(), /^0\{"sid":"[^"]+","upgrades":\[\],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000\}$/);
      ws.send("4" + "x".repeat(2000));
      const [code] = await withTimeout(new Promise((r) => ws.once("close", (...a) => r(a))), 5000, "close");
      assert.equal(code, 1009);
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
  it("closes a WebSocket that sends invalid UTF-8, with close code 1007, and others stay up", async () => {
    const other = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token(grant) } });
    const ws = new WebSocket(parley.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket");
    await withTimeout(new Promise((r) => ws.once("message", r)), 5000, "open packet");
    // A text frame with bytes that are not UTF-8: ws sends a Buffer as text when told so.
    ws.send(Buffer.from([0x34, 0xff, 0xfe, 0xfd]), { binary: false });
    const [code] = await withTimeout(new Promise((r) => ws.once("close", (...a) => r(a))), 5000, "close");
    assert.equal(code, 1007);
    assert.deepEqual(await emitWithAck(other, "subscribe", { conversationId: "still-up" }), {
      conversationId: "still-up",
      success: true,
    });
    other.close();
  });
});
