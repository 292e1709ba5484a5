// Bad options stop Parley with a message naming the option and exit code 2.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { startParley } from "./harness.mjs";

const cases = [
  [["--parley.http.port=abc"], /parley\.http\.port/],
  [["--parley.engineio.ping-interval=0s"], /^parley: parley\.engineio\.ping-interval must be greater than zero$/m],
  [["--parley.log.level=loud"], /^parley: invalid value for parley\.log\.level: "loud"$/m],
  [["--parley.no-such=1"], /parley\.no-such/],
  [['--parley.socketio.namespaces=["x"]'], /^parley: invalid value for parley\.socketio\.namespaces: "x" does not start with \/$/m],
];
for (const [args, pattern] of cases) {
  it(`${args.join(" ")} → exit 2 naming the option`, async () => {
    const r = await startParley(args, { expectExit: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, pattern);
  });
}

it("a wrong type in the config file is named too", async () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-conf-"));
  const file = join(dir, "bad.conf");
  writeFileSync(file, '[parley.engineio]\nping-timeout="soon"\n');
  const r = await startParley([`--config-file=${file}`], { expectExit: true });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^parley: invalid value for parley\.engineio\.ping-timeout: expected a duration such as 250ms, 5s or 1min, got "soon"$/m);
});

it("an unknown key in the config file is named", async () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-conf-"));
  const file = join(dir, "typo.conf");
  writeFileSync(file, "[parley.http]\nprot=3000\n");
  const r = await startParley([`--config-file=${file}`], { expectExit: true });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^parley: unknown option parley\.http\.prot$/m);
});
