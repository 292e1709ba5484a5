// Clone to chat: Parley in its development profile (what tools/run starts),
// two Chromium tabs on /demo, each with a name, chatting in one room —
// messages, typing, presence, and the history a third tab finds.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { launchChromium, NO_CHROMIUM } from "./browser.mjs";
import { BUILD, startParley } from "./harness.mjs";


describe("the demo in two browser tabs", { skip: NO_CHROMIUM }, () => {
  let parley, browser;
  before(async () => {
    parley = await startParley(["--parley.dev=true", '--parley.auth.jwt-secret=""', '--parley.api.key=""']);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    assert.equal(await parley.stop(), 0);
  });

  async function tab(name) {
    // Each tab in its own browser context: its own localStorage, as two people.
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${parley.url}/demo`, { waitUntil: "load" });
    await page.$eval("#name", (e, v) => (e.value = v), name);
    await page.$eval("#room", (e) => (e.value = "lobby"));
    await page.click("#go");
    await page.waitForFunction(() => !document.getElementById("text").disabled, { timeout: 5000 });
    assert.equal(await page.$eval("#state", (e) => e.textContent), `connected as ${name}`);
    return { page, errors };
  }
  const logText = (p) => p.$eval("#log", (e) => e.innerText);

  it("alice and bob chat, see each other type and come online; a later tab gets the history", async () => {
    const alice = await tab("alice");
    const bob = await tab("bob");
    await alice.page.waitForFunction(() => document.getElementById("online").innerText.includes("bob"), { timeout: 5000 });
    await alice.page.type("#text", "hello bob");
    await bob.page.waitForFunction(() => document.getElementById("typing").textContent === "alice is typing…", { timeout: 5000 });
    await alice.page.keyboard.press("Enter");
    await bob.page.waitForFunction(() => document.getElementById("log").innerText.includes("alice: hello bob"), { timeout: 5000 });
    await alice.page.waitForFunction(() => document.getElementById("log").innerText.includes("you: hello bob"), { timeout: 5000 });
    await bob.page.type("#text", "hi alice");
    await bob.page.keyboard.press("Enter");
    await alice.page.waitForFunction(() => document.getElementById("log").innerText.includes("bob: hi alice"), { timeout: 5000 });
    assert.equal(await bob.page.$eval("#typing", (e) => e.textContent), "");
    const carol = await tab("carol");
    await carol.page.waitForFunction(() => document.getElementById("log").innerText.includes("bob: hi alice"), { timeout: 5000 });
    const history = await logText(carol.page);
    assert.ok(history.indexOf("alice: hello bob") < history.indexOf("bob: hi alice"), history);
    await bob.page.close();
    await alice.page.waitForFunction(() => document.getElementById("log").innerText.includes("bob went offline"), { timeout: 5000 });
    await alice.page.screenshot({ path: join(BUILD, "demo.png") });
    for (const t of [alice, bob, carol]) assert.deepEqual(t.errors, []);
  });
});
