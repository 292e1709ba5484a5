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

// --help: Parley's options with their type, doc and default (from the option
// rows), not CAF's list; exit 0 without starting.
for (const flag of ["--help", "-h"]) {
  it(`${flag} lists Parley's options, their docs and defaults`, async () => {
    const r = await startParley([flag], { expectExit: true });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: parley /m);
    assert.match(r.stdout, /^ {2}--parley\.presence\.broadcast=<true\|false> +send user:online \/ user:offline .* \(default: true\)$/m);
    assert.match(r.stdout, /^ {2}--parley\.http\.port=<port> +listen port; 0 picks a free one.* \(default: 3000\)$/m);
    assert.match(r.stdout, /^ {2}--parley\.engineio\.ping-interval=<duration> +.*\(default: 25s\)$/m);
    assert.match(r.stdout, /^ {2}--parley\.socketio\.namespaces=<list> +.*\(default: \["\/", "\/messages"\]\)$/m);
    assert.match(r.stdout, /^ {2}--parley\.http\.address=<string> +.*\(default: "127\.0\.0\.1"\)$/m);
    assert.match(r.stdout, /^ {2}--config-file=<path> /m);
    assert.match(r.stdout, /^ {2}--scheduler\.max-threads=<n> /m);
    assert.doesNotMatch(r.stdout, /caf#|--dump-config|--middleman\.|work-stealing/);
    assert.doesNotMatch(r.stdout, /parley listening/);
    assert.equal(r.stderr, "");
  });
}

function confFile(name, text) {
  const file = join(mkdtempSync(join(tmpdir(), "parley-conf-")), name);
  writeFileSync(file, text);
  return file;
}

it("--check-config FILE: a good file is ok, nothing is started", async () => {
  const file = confFile("good.conf", '[parley.http]\nport=1\n[parley.presence]\nbroadcast=false\n[parley.store]\nbackend="memory"\n');
  const r = await startParley(["--check-config", file], { expectExit: true });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${file}: ok\n`);
  assert.equal(r.stderr, "");
});

it("--check-config FILE: a bad file is named in one sentence, exit 2", async () => {
  const file = confFile("bad.conf", '[parley.engineio]\nping-timeout="soon"\n');
  const r = await startParley([`--check-config=${file}`], { expectExit: true });
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    'parley: invalid value for parley.engineio.ping-timeout: expected a duration such as 250ms, 5s or 1min, got "soon"\n',
  );
});

it("--check-config FILE: an unknown key, a missing file, a syntax error", async () => {
  const typo = confFile("typo.conf", "[parley.http]\nprot=3000\n");
  let r = await startParley(["--check-config", typo], { expectExit: true });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "parley: unknown option parley.http.prot\n");
  r = await startParley(["--check-config", "/nonexistent/parley.conf"], { expectExit: true });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "parley: cannot open the config file /nonexistent/parley.conf\n");
  const broken = confFile("broken.conf", "[parley.http]\n# comment\n");
  r = await startParley(["--check-config", broken], { expectExit: true });
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`^parley: ${broken.replace(/[.]/g, "\\.")}: [a-z ]+( at line \\d+, column \\d+)?\\n$`));
});

// Bad options and values on the command line: one plain sentence, exit 2.
const sentences = [
  [["--parley.http.prot=1"], "parley: unknown option --parley.http.prot (see parley --help)"],
  [["--no-such-option"], "parley: unknown option --no-such-option (see parley --help)"],
  [["--parley.http.port=x"], 'parley: invalid value for parley.http.port: expected a port number (0..65535), got "x"'],
  [["--parley.http.port=70000"], 'parley: invalid value for parley.http.port: expected a port number (0..65535), got "70000"'],
  [["--parley.presence.broadcast=maybe"], 'parley: invalid value for parley.presence.broadcast: expected true or false, got "maybe"'],
  [["--parley.engineio.ping-interval=soon"], 'parley: invalid value for parley.engineio.ping-interval: expected a duration such as 250ms, 5s or 1min, got "soon"'],
  [["--parley.limits.max-connections=-1"], 'parley: invalid value for parley.limits.max-connections: expected a non-negative integer, got "-1"'],
  [["--parley.http.port"], "parley: missing value for parley.http.port: expected --parley.http.port=<port> (a port number (0..65535))"],
  [["--scheduler.max-threads=many"], 'parley: invalid value for scheduler.max-threads: expected a non-negative integer, got "many"'],
  [["stray"], 'parley: unexpected argument "stray" (see parley --help)'],
];
for (const [args, sentence] of sentences) {
  it(`${args.join(" ")} → "${sentence}", exit 2`, async () => {
    const r = await startParley(args, { expectExit: true });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, sentence + "\n");
  });
}

it("booleans take true/false (and 1/0, yes/no) on the command line; a flag alone is true", async () => {
  for (const v of ["=false", "=true", "=0", "=1", "=no", "=yes", ""]) {
    const file = confFile("ok.conf", "");
    const r = await startParley([`--parley.presence.broadcast${v}`, "--parley.auth.allow-anonymous-dev=false", "--check-config", file], { expectExit: true });
    assert.equal(r.code, 0, `--parley.presence.broadcast${v}: ${r.stderr}`);
  }
});
