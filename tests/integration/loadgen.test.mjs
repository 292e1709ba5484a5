// build/loadgen against the real Parley and against the benchmark peer
// (tools/bench/peer, npm socket.io 4.8): small runs whose counts are exact, so
// the generator that tools/bench/run trusts is itself checked, and so is the
// peer's claim to answer the same events the same way.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { API_KEY, BUILD, SECRET, startParley, withTimeout } from "./harness.mjs";

const PEER = new URL("../../tools/bench/peer/server.mjs", import.meta.url).pathname;

function run(cmd, args, ms = 60000) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return withTimeout(
    once(child, "exit").then(([code]) => ({ code, stdout, stderr })),
    ms,
    `${cmd} ${args.join(" ")}`,
  );
}

async function loadgen(url, pid, args, secret = SECRET) {
  const r = await run(`${BUILD}/loadgen`, [`--url=${url}`, `--server-pid=${pid}`, `--secret=${secret}`, "--timeout=50", ...args]);
  let json;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    assert.fail(`loadgen printed no JSON (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  }
  return { ...r, json };
}

async function startPeer(extra = []) {
  const child = spawn("node", [PEER, "--port=0", `--secret=${SECRET}`, `--api-key=${API_KEY}`, ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const url = await withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => {
        text += d;
        const m = /peer listening on (http:\/\/[^\s]+)/.exec(text);
        if (m) resolve(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`peer exited with ${code}`)));
    }),
    10000,
    "the peer to listen",
  );
  return { url, pid: child.pid, stop: () => (child.kill("SIGTERM"), once(child, "exit")) };
}

// A fan-out's exact counts: every message completed, every receiver got each
// once, nothing lost, no connection closed, and the latency of the messages
// scheduled inside the window only counted (one per receiver, one last member).
function assertEveryMessageOnce(json, receivers) {
  assert.equal(json.receivers_per_message, receivers);
  assert.equal(json.messages_completed, json.messages_sent);
  assert.equal(json.receipts, receivers * json.messages_sent);
  assert.equal(json.lost, 0);
  assert.equal(json.duplicates, 0);
  assert.equal(json.closed, 0);
  assert.equal(json.delivery_count, receivers * json.last_member_count);
  assert.ok(json.delivery_p50_us > 0 && json.delivery_p50_us <= json.delivery_max_us);
  assert.ok(json.server_cpu_us > 0, "the server's CPU is read from /proc");
}

const servers = {};
before(async () => {
  // The fan-out publisher sends faster than a chat user: no event rate limit
  // (the peer has none either).
  servers.parley = await startParley(["--parley.limits.events-per-second=0"]);
  servers.parley.pid = servers.parley.child.pid;
  servers.peer = await startPeer();
});
after(async () => {
  assert.equal(await servers.parley.stop(), 0);
  await servers.peer.stop();
});

for (const kind of ["parley", "peer"]) {
  describe(`loadgen against ${kind}`, () => {
    const s = () => servers[kind];

    it("fanout at a fixed rate: every member gets every message once, in order", async () => {
      const { code, json } = await loadgen(s().url, s().pid, [
        "--scenario=fanout", "--members=20", "--rate=200", "--warmup=0.2", "--duration=0.5",
      ]);
      assert.equal(code, 0);
      assert.equal(json.connections, 21);
      assert.ok(json.messages_sent >= 100, `sent ${json.messages_sent}`);
      assertEveryMessageOnce(json, 20);
      assert.equal(json.reordered, 0);
    });

    it("fanout with a stuck member: it is left out of the counts, the others get everything", async () => {
      const { json } = await loadgen(s().url, s().pid, [
        "--scenario=fanout", "--members=6", "--stuck=2", "--inflight=4", "--warmup=0.1", "--duration=0.4",
      ]);
      assert.equal(json.receivers_per_message, 4);
      assert.equal(json.mode, "fixed-in-flight");
      assert.equal(json.receipts, 4 * json.messages_sent);
      assert.equal(json.messages_completed, json.messages_sent);
      assert.equal(json.lost, 0);
    });

    it("fanout with a flooding connection: the others get everything", async () => {
      const { json } = await loadgen(s().url, s().pid, [
        "--scenario=fanout", "--members=5", "--flood=3000", "--rate=100", "--warmup=0.1", "--duration=0.4",
      ]);
      assert.equal(json.flood, 3000);
      assert.equal(json.connections, 7);
      assert.equal(json.receivers_per_message, 5);
      assert.equal(json.receipts, 5 * json.messages_sent);
      assert.equal(json.lost, 0);
      assert.equal(json.duplicates, 0);
      assert.ok(json.server_rss_peak_bytes >= json.server_rss_start_bytes);
    });

    it("chat with typing: the sender is excluded, typing reaches the other members", async () => {
      const { json } = await loadgen(s().url, s().pid, [
        "--scenario=chat", "--rooms=5", "--members=4", "--rate=100", "--typing", "--warmup=0.1", "--duration=0.5",
      ]);
      assert.equal(json.connections, 20);
      assert.equal(json.receivers_per_message, 3);
      assert.equal(json.receipts, 3 * json.messages_sent);
      assert.equal(json.lost, 0);
      assert.equal(json.duplicates, 0);
      assert.ok(json.typing_deliveries > 0);
    });

    it("connect and reconnect: exact counts", async () => {
      const c = await loadgen(s().url, s().pid, ["--scenario=connect", "--count=60", "--concurrency=8"]);
      assert.equal(c.json.up, 60);
      assert.equal(c.json.failures, 0);
      assert.equal(c.json.connect_count, 60);
      const r = await loadgen(s().url, s().pid, ["--scenario=reconnect", "--count=40", "--concurrency=8", "--settle=0.1", "--procs=2"]);
      assert.equal(r.json.processes, 2);
      assert.equal(r.json.up, 40);
      assert.equal(r.json.reconnect_count, 40);
      assert.equal(r.json.failures, 0);
    });

    it("idle: connections are held while the server's RSS is read", async () => {
      const { code, json } = await loadgen(s().url, s().pid, ["--scenario=idle", "--count=30", "--concurrency=10", "--settle=0.3"]);
      assert.equal(code, 0);
      assert.equal(json.up, 30);
      assert.equal(json.failures, 0);
      assert.equal(json.closed_while_held, 0);
      assert.ok(json.server_rss_held_bytes > 0 && json.server_rss_before_bytes > 0);
    });

    it("a wrong secret: every connection gets a CONNECT_ERROR", async () => {
      const { json } = await loadgen(s().url, s().pid, ["--scenario=connect", "--count=5", "--concurrency=5"], "not-the-secret");
      assert.equal(json.up, 0);
      assert.equal(json.failures, 5);
      assert.equal(json.protocol_errors, 5);
    });

    // The peer answers {"ok":true} only: no id or offset to check.
    const publishArgs = () => ["--scenario=publish", `--api-key=${API_KEY}`, ...(kind === "peer" ? ["--no-offsets"] : [])];

    it("publish at a fixed rate: every publish is answered 200 once, offsets growing per connection", async () => {
      const { code, json } = await loadgen(s().url, s().pid, [
        ...publishArgs(), "--rate=500", "--connections=8", "--rooms=3", "--warmup=0.2", "--duration=1",
      ]);
      assert.equal(code, 0, json.error);
      assert.equal(json.mode, "fixed-rate");
      assert.equal(json.connections, 8);
      // Publish k is due at k/500 s: 600 of them by the window's end (1.2 s), 500 inside it.
      assert.ok(Math.abs(json.publishes_sent - 600) <= 1, `sent ${json.publishes_sent}`);
      assert.equal(json.acked, json.publishes_sent);
      assert.ok(Math.abs(json.ack_count - 500) <= 1, `timed ${json.ack_count}`);
      assert.equal(json.non_200, 0);
      assert.equal(json.transport_errors, 0);
      assert.equal(json.unanswered, 0);
      assert.equal(json.answers_without_offset, 0);
      assert.equal(json.offset_order_violations, 0);
      assert.ok(json.ack_p50_us > 0 && json.ack_p50_us <= json.ack_max_us);
      assert.ok(json.server_cpu_us > 0, "the server's CPU is read from /proc");
    });

    it("publish at a fixed in-flight count: each connection sends again once answered", async () => {
      const { code, json } = await loadgen(s().url, s().pid, [...publishArgs(), "--inflight=4", "--warmup=0.1", "--duration=0.4"]);
      assert.equal(code, 0, json.error);
      assert.equal(json.mode, "fixed-in-flight");
      assert.equal(json.connections, 4);
      assert.ok(json.publishes_sent >= 4);
      assert.equal(json.acked, json.publishes_sent);
      assert.equal(json.unanswered, 0);
      assert.equal(json.non_200, 0);
      assert.equal(json.offset_order_violations, 0);
    });

    it("publish with a wrong api key: the run fails with the first answer", async () => {
      const { code, json } = await loadgen(s().url, s().pid, [
        "--scenario=publish", "--api-key=wrong", "--rate=50", "--connections=2", "--warmup=0", "--duration=0.2",
      ]);
      assert.equal(code, 1);
      assert.equal(json.acked, 0);
      assert.equal(json.non_200, json.publishes_sent);
      assert.match(json.error, /answers were not 200; the first: 401 /);
    });

    it("replay: a cut client recovers every missed event once and in order", async () => {
      // The peer recovers only with socket.io's connectionStateRecovery on.
      const server = kind === "peer" ? await startPeer(["--recovery=true"]) : s();
      try {
        const { code, json } = await loadgen(server.url, server.pid, [
          "--scenario=replay", `--api-key=${API_KEY}`, "--count=500", "--runs=2", "--connections=16",
        ]);
        assert.equal(code, 0, json.error);
        assert.equal(json.recovered, true);
        assert.equal(json.runs_recovered, 2);
        assert.equal(json.runs_complete, 2);
        assert.equal(json.expected, 1000);
        assert.equal(json.received, 1000);
        assert.equal(json.missing, 0);
        assert.equal(json.duplicates, 0);
        assert.equal(json.replayed_again, 0);
        assert.equal(json.reordered, 0);
        assert.equal(json.offset_mismatches, 0);
        assert.equal(json.foreign_events, 0);
        assert.equal(json.non_200, 0);
        assert.equal(json.replay_ms_runs.length, 2);
        assert.ok(json.replay_ms > 0 && json.replay_ms_min <= json.replay_ms && json.replay_ms <= json.replay_ms_max);
      } finally {
        if (server !== s()) await server.stop();
      }
    });

    it("plainfanout: every widget socket of the dialog gets every message published through the API once", async () => {
      // Parley admits the widget credential "bench" from its list (no backend to ask).
      const server = kind === "parley" ? await startParley(['--parley.plainws.assistants=["bench"]']) : s();
      if (server !== s()) server.pid = server.child.pid;
      try {
        const { code, json } = await loadgen(server.url, server.pid, [
          "--scenario=plainfanout", `--api-key=${API_KEY}`, "--members=20", "--inflight=4", "--warmup=0.2", "--duration=0.5",
        ]);
        assert.equal(code, 0, json.error);
        assert.equal(json.mode, "fixed-in-flight");
        assert.equal(json.connections, 20);
        assert.equal(json.api_connections, 4);
        assert.ok(json.messages_sent >= 4, `sent ${json.messages_sent}`);
        assertEveryMessageOnce(json, 20);
        assert.equal(json.unstamped_messages, 0);
        // Every publish answered 200 with delivered.site = 20.
        assert.equal(json.non_200, 0);
        assert.equal(json.transport_errors, 0);
        assert.equal(json.unanswered, 0);
        assert.equal(json.delivered_mismatches, 0);
      } finally {
        if (server !== s()) assert.equal(await server.stop(), 0);
      }
    });

    it("presence churn: every observer sees every churned user come and go", async () => {
      const { json } = await loadgen(s().url, s().pid, [
        "--scenario=presence", "--observers=5", "--churners=2", "--count=400", "--duration=0.5",
      ]);
      assert.ok(json.cycles > 0);
      assert.equal(json.churn_failures, 0);
      assert.equal(json.online_seen, 5 * json.cycles);
      assert.equal(json.offline_seen, 5 * json.cycles);
    });
  });
}

describe("loadgen refuses", () => {
  it("targets outside 127.0.0.0/8, with exit code 2 and the reason", async () => {
    const r = await run(`${BUILD}/loadgen`, ["--scenario=connect", "--url=http://10.0.0.1:80"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^loadgen: loadgen only targets 127\.0\.0\.0\/8, not 10\.0\.0\.1\n/);
  });

  it("unknown arguments and scenarios, with exit code 2 and the reason", async () => {
    const a = await run(`${BUILD}/loadgen`, ["--scenario=fanout", "--url=http://127.0.0.1:1", "--nope=1"]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /^loadgen: unknown argument --nope=1\n/);
    const b = await run(`${BUILD}/loadgen`, ["--scenario=teleport", "--url=http://127.0.0.1:1"]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /^loadgen: unknown --scenario teleport\n/);
  });

  it("publish, replay and plainfanout without an api key, with exit code 2 and the reason", async () => {
    for (const scenario of ["publish", "replay", "plainfanout"]) {
      const r = await run(`${BUILD}/loadgen`, [`--scenario=${scenario}`, "--url=http://127.0.0.1:1"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`^loadgen: ${scenario} needs --api-key\n`));
    }
  });
});
