// user:online / user:offline once per user, not per tab, and the presence API.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { io } from "socket.io-client";
import { api, connect, recorder, sleep, startParley, token, withTimeout } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const open = (sub, url = parley.url) =>
  connect(url, "/messages", { transports: ["websocket"], auth: { token: token({ sub }) } });

// GET /api/v1/presence/{user}, polled until it answers `want` (the presence
// actor has then handled every online/offline that leads there, and sent the
// announcement it makes for them); fails with the last answer.
async function presenceIs(user, want, url = parley.url) {
  let last;
  try {
    await withTimeout(
      (async () => {
        for (;;) {
          last = await api(url, "GET", `/api/v1/presence/${user}`);
          if (last.status === 200 && JSON.stringify(last.json) === JSON.stringify(want)) return;
          await sleep(20);
        }
      })(),
      5000,
      `presence of ${user}`,
    );
  } catch (err) {
    assert.deepEqual(last?.json, want, err.message);
    throw err;
  }
}

const presenceEvents = (rec) =>
  rec.events.filter((e) => e.event.startsWith("user:")).map((e) => [e.event, ...e.args]);

it("announces a user once across two tabs, and offline only when the last closes", async () => {
  const watcher = await open("watcher");
  const rec = recorder(watcher);
  const tab1 = await open("carol");
  const [online] = await rec.waitFor("user:online");
  assert.deepEqual(online.args, [{ userId: "carol" }]);
  const tab2 = await open("carol");
  await presenceIs("carol", { userId: "carol", online: true, connections: 2 });
  tab1.close();
  await presenceIs("carol", { userId: "carol", online: true, connections: 1 });
  // Fence: the presence actor has handled carol's second online and first
  // offline (the presence API said so); fence's online comes after them and
  // takes the same path (presence actor → directory → nsp:/messages room).
  const fence = await open("fence");
  await rec.waitFor("user:online", 2);
  assert.deepEqual(presenceEvents(rec), [
    ["user:online", { userId: "carol" }],
    ["user:online", { userId: "fence" }],
  ], "the second tab announces nothing, and closing one of two tabs neither");
  tab2.close();
  const [offline] = await rec.waitFor("user:offline");
  assert.deepEqual(offline.args, [{ userId: "carol" }]);
  const p = await api(parley.url, "GET", "/api/v1/presence/carol");
  assert.deepEqual(p.json, { userId: "carol", online: false, connections: 0 });
  // Fence: fence's offline is announced after carol's, on the same path.
  fence.close();
  await rec.waitFor("user:offline", 2);
  assert.deepEqual(presenceEvents(rec), [
    ["user:online", { userId: "carol" }],
    ["user:online", { userId: "fence" }],
    ["user:offline", { userId: "carol" }],
    ["user:offline", { userId: "fence" }],
  ]);
  watcher.close();
});

it("does not announce a user to its own socket", async () => {
  // Recorded from the start: its own announcement would come right behind the
  // CONNECT packet, before connect() resolved.
  const dan = io(`${parley.url}/messages`, {
    reconnection: false,
    forceNew: true,
    transports: ["websocket"],
    auth: { token: token({ sub: "dan" }) },
  });
  const rec = recorder(dan);
  await withTimeout(new Promise((resolve, reject) => (dan.once("connect", resolve), dan.once("connect_error", reject))), 5000, "dan to connect");
  await presenceIs("dan", { userId: "dan", online: true, connections: 1 });
  // Fence: another user's online, handled by the presence actor after dan's
  // and announced on the same path, must reach dan; his own came before it.
  const other = await open("dan-fence");
  await rec.waitFor("user:online");
  assert.deepEqual(presenceEvents(rec), [["user:online", { userId: "dan-fence" }]]);
  other.close();
  dan.close();
});

it("with presence.broadcast=false nothing is announced, presence is still counted", async () => {
  // From a config file (the next test: the command line).
  const conf = join(mkdtempSync(join(tmpdir(), "parley-presence-")), "quiet.conf");
  writeFileSync(conf, "[parley.presence]\nbroadcast=false\n");
  const quiet = await startParley([`--config-file=${conf}`]);
  try {
    const watcher = await open("watcher", quiet.url);
    const rec = recorder(watcher);
    const erin = await open("erin", quiet.url);
    await presenceIs("erin", { userId: "erin", online: true, connections: 1 }, quiet.url);
    erin.close();
    await presenceIs("erin", { userId: "erin", online: false, connections: 0 }, quiet.url);
    // Fence: erin's online and offline have been handled (the presence API said
    // so), and an announcement would already be on its way to the directory; a
    // publish to the namespace's room, which the announcements use, comes after
    // it through the same room actor.
    const res = await api(quiet.url, "POST", "/api/v1/publish", { room: "nsp:/messages", event: "fence" });
    assert.equal(res.status, 200);
    await rec.waitFor("fence");
    assert.deepEqual(rec.events.map((e) => e.event), ["fence"]);
    watcher.close();
  } finally {
    assert.equal(await quiet.stop(), 0);
  }
});

it("--parley.presence.broadcast=false on the command line turns announcements off too", async () => {
  const quiet = await startParley(["--parley.presence.broadcast=false"]);
  try {
    const watcher = await open("watcher", quiet.url);
    const rec = recorder(watcher);
    const frank = await open("frank", quiet.url);
    await presenceIs("frank", { userId: "frank", online: true, connections: 1 }, quiet.url);
    // Fence as above: a publish to the namespace's room comes after any announcement.
    const res = await api(quiet.url, "POST", "/api/v1/publish", { room: "nsp:/messages", event: "fence" });
    assert.equal(res.status, 200);
    await rec.waitFor("fence");
    assert.deepEqual(rec.events.map((e) => e.event), ["fence"]);
    frank.close();
    watcher.close();
  } finally {
    assert.equal(await quiet.stop(), 0);
  }
});
