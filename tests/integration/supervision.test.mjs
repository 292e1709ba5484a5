// Supervision that repairs state: every long-lived actor is made to fail
// (POST /api/v1/debug/kill/{actor}, enabled by parley.debug.fault-injection)
// while the API publishes to rooms, and afterwards publishes reach every
// joined socket again, presence counts what is really connected, and the RTM
// upstreams run the same profiles (also those added at run time), dropping
// the duplicates the dedup saw before its restart.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { api, connect, emitWithAck, recorder, startParley, token, withTimeout } from "./harness.mjs";
import { eventually, startRtmSim } from "./rtm_harness.mjs";

const SHARDS = 4;
const ROOMS = Array.from({ length: 8 }, (_, i) => `${i + 1}`);

describe("rooms and presence", () => {
  let parley;
  const members = []; // {s, rec, user}
  let watcher;
  let traffic; // background publishes while actors fail
  let stopTraffic = false;

  before(async () => {
    parley = await startParley([
      "--parley.debug.fault-injection",
      `--parley.rooms.directory-shards=${SHARDS}`,
      "--parley.log.level=info",
    ]);
    for (let i = 0; i < 6; i++) {
      const user = `u${i}`;
      const s = await connect(parley.url, "/", {
        transports: i < 4 ? ["websocket"] : ["polling"],
        auth: { token: token({ sub: user, rooms: ["conversation:*"] }) },
      });
      const rec = recorder(s);
      for (const r of ROOMS)
        assert.deepEqual(await emitWithAck(s, "conversation:join", { conversationId: r }), { conversationId: r, success: true });
      members.push({ s, rec, user });
    }
    watcher = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "watcher" }) } });
    watcher.rec = recorder(watcher);
    // Traffic all along: one publish at a time to each room in turn. While a
    // shard is being restarted the API answers 503 (nothing sent).
    traffic = (async () => {
      for (let n = 0; !stopTraffic && n < 100000; n++) {
        const r = await api(parley.url, "POST", "/api/v1/publish", {
          room: `conversation:${ROOMS[n % ROOMS.length]}`,
          event: "tick",
          data: n,
        });
        assert.ok(r.status === 200 || (r.status === 503 && r.json.error.code === "unavailable"), r.text);
      }
    })();
  });

  after(async () => {
    stopTraffic = true;
    await traffic;
    for (const m of members) m.s.close();
    watcher?.close();
    if (parley) assert.equal(await parley.stop(), 0);
  });

  const kill = async (name) => {
    const r = await api(parley.url, "POST", `/api/v1/debug/kill/${encodeURIComponent(name)}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true });
  };

  // Publishes `probe` {tag, room} to every room, again every 100 ms, until
  // each member has it from each room: every socket is back in every room.
  async function everyMemberReached(tag) {
    const reached = (m, room) => m.rec.of("probe").some((e) => e.args[0].tag === tag && e.args[0].room === room);
    await withTimeout(
      (async () => {
        for (let round = 0; round < 200; round++) {
          const missing = ROOMS.filter((r) => !members.every((m) => reached(m, r)));
          if (missing.length === 0) return;
          for (const r of missing)
            await api(parley.url, "POST", "/api/v1/publish", { room: `conversation:${r}`, event: "probe", data: { tag, room: r } });
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error("not every member was reached in 200 rounds");
      })(),
      15000,
      `every member reached by probe ${tag}`,
    );
  }

  it("every directory shard and a room fail in turn; members are in all their rooms again", async () => {
    await everyMemberReached("before");
    for (let i = 0; i < SHARDS; i++) {
      await kill(`directory/${i}`);
      await everyMemberReached(`after directory/${i}`);
    }
    await kill("room/conversation:3");
    await everyMemberReached("after room/conversation:3");
    // The log names each failure the supervisor restarted.
    for (let i = 0; i < SHARDS; i++)
      await eventually(() => parley.stdout.includes(`p_dir_${i} stopped (`), 5000, `the restart of shard ${i} logged`);
    // Joins and leaves work as before: a leave takes the socket out of the room.
    const m = members[0];
    assert.deepEqual(await emitWithAck(m.s, "conversation:leave", { conversationId: "1" }), { conversationId: "1", success: true });
    await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:1", event: "only-others", data: 1 });
    // Fence: published after, to a room m is in; ordered behind it on m's I/O path.
    await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:2", event: "fence", data: 1 });
    await m.rec.waitFor("fence");
    await members[1].rec.waitFor("only-others");
    assert.equal(m.rec.of("only-others").length, 0);
    assert.deepEqual(await emitWithAck(m.s, "conversation:join", { conversationId: "1" }), { conversationId: "1", success: true });
    // No room is counted twice or lost: conversation:1..8 and the namespace's room.
    await eventually(async () => /^parley_rooms 9$/m.test((await api(parley.url, "GET", "/metrics")).text), 5000, "parley_rooms 9");
  });

  it("presence fails; it counts every socket again without announcing anyone twice", async () => {
    const onlineBefore = watcher.rec.of("user:online").length;
    await kill("presence");
    for (const m of members)
      await eventually(
        async () => (await api(parley.url, "GET", `/api/v1/presence/${m.user}`)).json?.connections === 1,
        10000,
        `presence of ${m.user} counted again`,
      );
    // A user who connects now is announced once; nobody else was announced.
    const late = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "late" }) } });
    await watcher.rec.waitFor("user:online", onlineBefore + 1);
    assert.deepEqual(
      watcher.rec.of("user:online").slice(onlineBefore).map((e) => e.args),
      [[{ userId: "late" }]],
    );
    // The last socket of a user that was counted again makes it offline.
    const last = members.pop();
    last.s.close();
    const [off] = await watcher.rec.waitFor("user:offline");
    assert.deepEqual(off.args, [{ userId: last.user }]);
    assert.deepEqual((await api(parley.url, "GET", `/api/v1/presence/${last.user}`)).json, {
      userId: last.user,
      online: false,
      connections: 0,
    });
    late.close();
    await everyMemberReached("after presence");
  });
});

describe("rtm", () => {
  let sim;
  let parley;
  let op7;
  let op9;

  const status = async () => (await api(parley.url, "GET", "/api/tt/rtm-status")).json;
  const kill = async (name) => {
    const r = await api(parley.url, "POST", `/api/v1/debug/kill/${name}`);
    assert.equal(r.status, 200, r.text);
  };
  const emit = async (profileId, id, text = "hi") => {
    const r = await sim.control("POST", "/control/emit", {
      profileId,
      event: { type: "chat_MessageNew", data: { message: { id, idUserFrom: 42, idUserTo: Number(profileId), type: "text", content: { message: text }, dateCreated: "2026-11-25T10:00:00Z" } } },
    });
    assert.equal(r.status, 200);
    return r.body.delivered;
  };
  const messagesOf = (who, id) => who.rec.of("message").filter((e) => e.args[0].id === id);

  before(async () => {
    sim = await startRtmSim(["--profile=7:pw7"]);
    const conf = join(mkdtempSync(join(tmpdir(), "parley-sup-")), "rtm.conf");
    writeFileSync(
      conf,
      `[parley.rtm]
url="${sim.wsUrl}"
api-url="${sim.url}"
login-url="${sim.url}/auth/login"
backoff-base=50ms
backoff-max=500ms
dedup-ttl=1min
client-wait=300ms
profiles=[{id="7", password="pw7"}]
`,
    );
    parley = await startParley([`--config-file=${conf}`, "--parley.debug.fault-injection", "--parley.log.level=info"]);
    const operator = async (sub, profile) => {
      const s = await connect(parley.url, "/", { auth: { token: token({ sub, profiles: [profile] }) } });
      const rec = recorder(s);
      assert.deepEqual(await emitWithAck(s, "join", { dialogId: `${profile}-42` }), { joined: `dialog:${profile}-42`, userId: sub });
      return { s, rec };
    };
    op7 = await operator("op7", "7");
    op9 = await operator("op9", "9");
    // Profile 9 is added at run time, with a session from the simulator.
    const session = await sim.control("POST", "/control/sessions", { profileId: "9" });
    const put = await api(parley.url, "PUT", "/api/v1/rtm/profiles/9", { cookies: session.body.cookies });
    assert.deepEqual(put.json, { ok: true, created: true });
    await eventually(async () => (await status()).status === "connected", 10000, "both profiles connected");
  });

  after(async () => {
    op7?.s.close();
    op9?.s.close();
    if (parley) assert.equal(await parley.stop(), 0);
    if (sim) await sim.stop();
  });

  it("the RTM supervisor fails: both profiles run again, the one added at run time too", async () => {
    const before = (await sim.state()).profiles;
    await kill("rtm-supervisor");
    await eventually(async () => {
      const p = (await sim.state()).profiles;
      return p["7"].handshakes > before["7"].handshakes && p["9"].handshakes > before["9"].handshakes
        && p["7"].connections === 1 && p["9"].connections === 1;
    }, 10000, "both profiles connected anew (and only once) by the restarted supervisor");
    await eventually(async () => {
      const s = await status();
      return s.status === "connected" && Object.keys(s.profiles).sort().join() === "7,9";
    }, 10000, "rtm-status connected with profiles 7 and 9");
    // Events flow for both.
    await eventually(async () => (await emit("9", 9001)) === 1, 5000, "profile 9 subscribed upstream");
    await op9.rec.waitFor("message");
    assert.equal(messagesOf(op9, 9001).length, 1);
  });

  it("the dedup fails: what it saw before is still a duplicate after", async () => {
    await eventually(async () => (await emit("7", 7001)) === 1, 5000, "profile 7 subscribed upstream");
    await withTimeout((async () => { while (messagesOf(op7, 7001).length < 1) await new Promise((r) => setTimeout(r, 20)); })(), 5000, "message 7001");
    await kill("rtm-dedup");
    await eventually(() => parley.stdout.includes("p_rtm_dd stopped ("), 5000, "the dedup's failure logged");
    // Emitted until a fresh id gets through: the restarted dedup is in place.
    let fresh = 7100;
    await eventually(async () => {
      await emit("7", ++fresh);
      await new Promise((r) => setTimeout(r, 50));
      return messagesOf(op7, fresh).length === 1;
    }, 10000, "a fresh message through the restarted dedup");
    await emit("7", 7001); // seen before the restart: dropped
    await emit("7", 7002); // the fence: behind it on the same path
    await withTimeout((async () => { while (messagesOf(op7, 7002).length < 1) await new Promise((r) => setTimeout(r, 20)); })(), 5000, "message 7002");
    assert.equal(messagesOf(op7, 7001).length, 1);
  });

  it("the translator fails: events that arrive meanwhile wait and are delivered", async () => {
    await kill("rtm-translator");
    for (let id = 7201; id <= 7220; id++) await emit("7", id);
    await withTimeout(
      (async () => { while (!Array.from({ length: 20 }, (_, k) => 7201 + k).every((id) => messagesOf(op7, id).length === 1)) await new Promise((r) => setTimeout(r, 20)); })(),
      10000,
      "messages 7201..7220",
    );
    // Each once, in order.
    const ids = op7.rec.of("message").map((e) => e.args[0].id).filter((id) => id >= 7201 && id <= 7220);
    assert.deepEqual(ids, Array.from({ length: 20 }, (_, k) => 7201 + k));
  });
});
