// user:online / user:offline once per user, not per tab, and the presence API.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { api, connect, recorder, sleep, startParley, token } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const open = (sub) =>
  connect(parley.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub }) } });

it("announces a user once across two tabs, and offline only when the last closes", async () => {
  const watcher = await open("watcher");
  const rec = recorder(watcher);
  const tab1 = await open("carol");
  const [online] = await rec.waitFor("user:online");
  assert.deepEqual(online.args, [{ userId: "carol" }]);
  const tab2 = await open("carol");
  let p = await api(parley.url, "GET", "/api/v1/presence/carol");
  assert.equal(p.status, 200);
  assert.deepEqual(p.json, { userId: "carol", online: true, connections: 2 });
  tab1.close();
  await sleep(300);
  assert.equal(rec.of("user:online").length, 1, "the second tab announces nothing");
  assert.equal(rec.of("user:offline").length, 0, "closing one of two tabs announces nothing");
  p = await api(parley.url, "GET", "/api/v1/presence/carol");
  assert.deepEqual(p.json, { userId: "carol", online: true, connections: 1 });
  tab2.close();
  const [offline] = await rec.waitFor("user:offline");
  assert.deepEqual(offline.args, [{ userId: "carol" }]);
  p = await api(parley.url, "GET", "/api/v1/presence/carol");
  assert.deepEqual(p.json, { userId: "carol", online: false, connections: 0 });
  await sleep(200);
  assert.equal(rec.of("user:online").length, 1);
  assert.equal(rec.of("user:offline").length, 1);
  watcher.close();
});

it("does not announce a user to its own socket", async () => {
  const dan = await open("dan");
  const rec = recorder(dan);
  await sleep(300);
  assert.equal(rec.of("user:online").length, 0);
  dan.close();
});

it("with presence.broadcast=false nothing is announced, presence is still counted", async () => {
  // CAF takes booleans on the command line as flags (true only): false comes from a file.
  const conf = join(mkdtempSync(join(tmpdir(), "parley-presence-")), "quiet.conf");
  writeFileSync(conf, "[parley.presence]\nbroadcast=false\n");
  const quiet = await startParley([`--config-file=${conf}`]);
  try {
    const o = (sub) => connect(quiet.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub }) } });
    const watcher = await o("watcher");
    const rec = recorder(watcher);
    const erin = await o("erin");
    const p = await api(quiet.url, "GET", "/api/v1/presence/erin");
    assert.deepEqual(p.json, { userId: "erin", online: true, connections: 1 });
    erin.close();
    await sleep(300);
    assert.equal(rec.of("user:online").length, 0);
    assert.equal(rec.of("user:offline").length, 0);
    watcher.close();
  } finally {
    assert.equal(await quiet.stop(), 0);
  }
});
