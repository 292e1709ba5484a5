// Authentication: where the token comes from, and each way it can be refused,
// with the exact CONNECT_ERROR texts the seed frontends match on.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac, createSign, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SECRET, connect, connectError, emitWithAck, startParley, token } from "./harness.mjs";

const NO_TOKEN = "Authentication failed: No token provided";
const INVALID = "Authentication failed: Invalid token";

const b64url = (x) => Buffer.from(x).toString("base64url");
function signWith(alg, key, claims, header = { alg, typ: "JWT" }) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify({ iat: now, exp: now + 600, ...claims }))}`;
  const signer = createSign("SHA256").update(head);
  const sig =
    alg === "ES256" ? signer.sign({ key, dsaEncoding: "ieee-p1363" }) : signer.sign(key);
  return `${head}.${sig.toString("base64url")}`;
}

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

describe("HS256 with auth.jwt-secret", () => {
  for (const transport of ["websocket", "polling"]) {
    it(`accepts auth.token over ${transport}`, async () => {
      const s = await connect(parley.url, "/", { transports: [transport], auth: { token: token({ sub: "u" }) } });
      assert.equal(s.connected, true);
      s.close();
    });
  }
  it("accepts an Authorization: Bearer header", async () => {
    const s = await connect(parley.url, "/messages", {
      transports: ["websocket"],
      extraHeaders: { authorization: `Bearer ${token({ sub: "h" })}` },
    });
    s.close();
  });
  it("accepts ?token=", async () => {
    const s = await connect(parley.url, "/", { transports: ["polling"], query: { token: token({ sub: "q" }) } });
    s.close();
  });
  it("takes auth.token before the header", async () => {
    const s = await connect(parley.url, "/", {
      transports: ["websocket"],
      auth: { token: token({ sub: "first" }) },
      extraHeaders: { authorization: "Bearer garbage" },
    });
    s.close();
  });

  const refusals = [
    ["no token at all", {}, NO_TOKEN],
    ["an expired token", { auth: { token: token({ sub: "u", exp: Math.floor(Date.now() / 1000) - 10 }) } }, INVALID],
    ["a token not valid yet", { auth: { token: token({ sub: "u", nbf: Math.floor(Date.now() / 1000) + 600 }) } }, INVALID],
    ["a bad signature", { auth: { token: token({ sub: "u" }, { secret: "another-secret" }) } }, INVALID],
    ["alg none", { auth: { token: token({ sub: "u" }, { header: { alg: "none", typ: "JWT" } }).replace(/\.[^.]*$/, ".") } }, INVALID],
    ["a malformed token", { auth: { token: "not-a-jwt" } }, INVALID],
    ["a token without sub", { auth: { token: token({}) } }, INVALID],
    ["?userId= outside development mode", { query: { userId: "u1" } }, NO_TOKEN],
  ];
  for (const [what, opts, message] of refusals) {
    it(`refuses ${what}: "${message}"`, async () => {
      const err = await connectError(parley.url, "/messages", { transports: ["websocket"], ...opts });
      assert.equal(err.message, message);
    });
  }
  it("an RS256 token when only a secret is configured is refused", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const t = signWith("RS256", privateKey, { sub: "u" });
    const err = await connectError(parley.url, "/", { transports: ["websocket"], auth: { token: t } });
    assert.equal(err.message, INVALID);
  });
});

describe("a token nested 150,000 levels deep", () => {
  // {"sub":"deep","exp":…,"x":[[[…]]]}: 300 kB of JSON, 400 kB of token, under maxPayload.
  const levels = 150000;
  const deepToken = (secret) => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const body = `{"sub":"deep","exp":${exp},"x":${"[".repeat(levels)}${"]".repeat(levels)}}`;
    const head = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(body)}`;
    return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
  };
  for (const [what, secret] of [["signed with the secret", SECRET], ["with a bad signature", "another-secret"]]) {
    it(`${what} is refused and the server keeps serving`, async () => {
      const err = await connectError(parley.url, "/", { transports: ["websocket"], auth: { token: deepToken(secret) } });
      assert.equal(err.message, INVALID);
      const s = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "after" }) } });
      assert.equal(s.connected, true);
      s.close();
      assert.equal(parley.child.exitCode, null);
    });
  }
});

describe("RS256 / ES256 with auth.jwt-public-key-file, iss and aud", () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-keys-"));
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" });
  writeFileSync(join(dir, "rsa.pem"), rsaPem);
  writeFileSync(join(dir, "ec.pem"), ec.publicKey.export({ type: "spki", format: "pem" }));
  const claims = { sub: "k", iss: "parley-tests", aud: "parley" };
  let rs, es;
  before(async () => {
    const common = ['--parley.auth.jwt-secret=""', "--parley.auth.issuer=parley-tests", "--parley.auth.audience=parley"];
    rs = await startParley([...common, `--parley.auth.jwt-public-key-file=${join(dir, "rsa.pem")}`]);
    es = await startParley([...common, `--parley.auth.jwt-public-key-file=${join(dir, "ec.pem")}`]);
  });
  after(async () => {
    assert.equal(await rs.stop(), 0);
    assert.equal(await es.stop(), 0);
  });
  it("accepts RS256 signed by the key", async () => {
    const s = await connect(rs.url, "/", { transports: ["websocket"], auth: { token: signWith("RS256", rsa.privateKey, claims) } });
    s.close();
  });
  it("accepts ES256 signed by the key", async () => {
    const s = await connect(es.url, "/", { transports: ["websocket"], auth: { token: signWith("ES256", ec.privateKey, claims) } });
    s.close();
  });
  it("refuses HS256 signed with the public key's text (key confusion)", async () => {
    const t = token(claims, { secret: rsaPem });
    const err = await connectError(rs.url, "/", { transports: ["websocket"], auth: { token: t } });
    assert.equal(err.message, INVALID);
  });
  it("refuses a wrong issuer and a wrong audience", async () => {
    for (const bad of [{ ...claims, iss: "someone-else" }, { ...claims, aud: "other" }]) {
      const err = await connectError(rs.url, "/", { transports: ["websocket"], auth: { token: signWith("RS256", rsa.privateKey, bad) } });
      assert.equal(err.message, INVALID);
    }
  });
  it("refuses ES256 signed by another key", async () => {
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const err = await connectError(es.url, "/", { transports: ["websocket"], auth: { token: signWith("ES256", other.privateKey, claims) } });
    assert.equal(err.message, INVALID);
  });
});

describe("a public key not on P-256", () => {
  it("makes parley exit 2 naming parley.auth", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parley-p384-"));
    const priv = join(dir, "p384.key");
    const pub = join(dir, "p384.pem");
    execFileSync("openssl", ["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", priv]);
    execFileSync("openssl", ["ec", "-in", priv, "-pubout", "-out", pub], { stdio: "ignore" });
    const r = await startParley([`--parley.auth.jwt-public-key-file=${pub}`], { expectExit: true });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      "parley: invalid value for parley.auth: cannot use public key: ES256 needs an EC key on P-256 (prime256v1), this one is on secp384r1\n",
    );
  });
});

describe("development mode", () => {
  it("accepts ?userId= only with auth.allow-anonymous-dev", async () => {
    const dev = await startParley(["--parley.auth.allow-anonymous-dev"]);
    try {
      const s = await connect(dev.url, "/messages", { transports: ["websocket"], query: { userId: "dev-user" } });
      assert.deepEqual(await emitWithAck(s, "join", { room: "anything:1" }), { joined: "anything:1", userId: "dev-user" });
      s.close();
    } finally {
      assert.equal(await dev.stop(), 0);
    }
  });
});
