// The integration harness: starts the real build/parley on a port it picks,
// mints tokens, connects real socket.io-client sockets, and waits for events
// with deadlines so that no test can hang.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";

export const BUILD = process.env.PARLEY_BUILD_DIR ?? new URL("../../build", import.meta.url).pathname;
export const SECRET = "integration-secret";
export const API_KEY = "integration-api-key";

// Starts build/parley with the given extra options; resolves once it prints its
// listening line. `stop()` sends SIGTERM and resolves with the exit code.
// `wrap` runs it under another command (e.g. ["prlimit", "--nofile=32"]).
export async function startParley(extra = [], { expectExit = false, wrap = [] } = {}) {
  const defaults = [
    "--parley.http.port=0",
    `--parley.auth.jwt-secret=${SECRET}`,
    `--parley.api.key=${API_KEY}`,
    "--parley.log.level=warn",
    "--scheduler.max-threads=2",
  ];
  // An option given in `extra` replaces its default.
  const key = (a) => a.split("=")[0];
  const given = new Set(extra.map(key));
  // A message log of its own, removed when it stops (unless the test named one).
  let scratch;
  if (!given.has("--parley.store.path") && !expectExit) {
    scratch = mkdtempSync(join(tmpdir(), "parley-store-"));
    defaults.push(`--parley.store.path=${join(scratch, "parley.db")}`);
  }
  const args = [...defaults.filter((a) => !given.has(key(a))), ...extra];
  const cmd = [...wrap, `${BUILD}/parley`, ...args];
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = once(child, "exit").then(([code, signal]) => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    return code ?? signal;
  });
  if (expectExit) {
    child.stdout.on("data", (d) => (stdout += d));
    const code = await withTimeout(exited, 10000, "parley to exit");
    return { code, stdout, stderr };
  }
  const url = await withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => {
        stdout += d;
        const m = /parley listening on (http:\/\/[^\s]+)/.exec(stdout);
        if (m) resolve(m[1]);
      });
      exited.then((code) => reject(new Error(`parley exited with ${code}: ${stderr}`)));
    }),
    10000,
    "parley to listen",
  );
  return {
    url,
    child,
    get stderr() {
      return stderr;
    },
    // Everything printed so far (the log goes to stdout).
    get stdout() {
      return stdout;
    },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      return withTimeout(exited, 10000, "parley to stop");
    },
  };
}

// Runs fn against a Parley of its own started with `extra` (for what could
// take a server down, so that other tests do not depend on it); it must stop
// cleanly, exit code 0, whatever fn did.
export async function withParley(extra, fn) {
  const p = await startParley(extra);
  let failure;
  try {
    await fn(p);
  } catch (e) {
    failure = e;
  }
  const code = await p.stop();
  if (failure) throw failure;
  if (code !== 0) throw new Error(`parley exited with ${code}`);
}

function b64url(data) {
  return Buffer.from(data).toString("base64url");
}

// An HS256 JWT (expires in an hour unless `exp` is given).
export function token(claims, { secret = SECRET, header = { alg: "HS256", typ: "JWT" } } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { iat: now, exp: now + 3600, ...claims };
  const head = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = createHmac("sha256", secret).update(head).digest("base64url");
  return `${head}.${sig}`;
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

// A socket.io-client socket; resolves once connected (rejects on connect_error).
export async function connect(url, nsp = "/", opts = {}) {
  const socket = io(url + nsp, { reconnection: false, forceNew: true, ...opts });
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }),
    5000,
    `connect to ${nsp}`,
  );
  return socket;
}

// Resolves with the connect_error a socket gets.
export async function connectError(url, nsp = "/", opts = {}) {
  const socket = io(url + nsp, { reconnection: false, forceNew: true, ...opts });
  try {
    return await withTimeout(
      new Promise((resolve, reject) => {
        socket.once("connect", () => reject(new Error("connected, but a connect_error was expected")));
        socket.once("connect_error", resolve);
      }),
      5000,
      `connect_error on ${nsp}`,
    );
  } finally {
    socket.close();
  }
}

// Records every event a socket receives, so tests can wait for the n-th one
// or assert that none arrived.
export function recorder(socket) {
  const events = [];
  const waiters = [];
  socket.onAny((event, ...args) => {
    events.push({ event, args });
    for (const w of [...waiters]) w();
  });
  return {
    events,
    of(name) {
      return events.filter((e) => e.event === name);
    },
    async waitFor(name, count = 1, ms = 5000) {
      const ready = () => events.filter((e) => e.event === name).length >= count;
      if (!ready()) {
        await withTimeout(
          new Promise((resolve) => {
            const w = () => {
              if (ready()) {
                waiters.splice(waiters.indexOf(w), 1);
                resolve();
              }
            };
            waiters.push(w);
          }),
          ms,
          `${count} × "${name}"`,
        );
      }
      return events.filter((e) => e.event === name);
    },
  };
}

export function emitWithAck(socket, event, ...args) {
  return withTimeout(socket.timeout(5000).emitWithAck(event, ...args), 6000, `ack of ${event}`);
}

// The arguments of a stored event without its offset: the last argument,
// checked to be one (a decimal string).
export function stored(args) {
  assert.equal(typeof args.at(-1), "string", `a stored event ends with its offset: ${JSON.stringify(args)}`);
  assert.match(args.at(-1), /^[1-9]\d*$/);
  return args.slice(0, -1);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// POST/GET against the backend API.
// `authorization` replaces the API key header (e.g. "Bearer <token>").
export async function api(url, method, path, body, { key = API_KEY, raw, authorization } = {}) {
  const headers = { "content-type": "application/json" };
  if (key !== null) headers.authorization = `apikey ${key}`;
  if (authorization !== undefined) headers.authorization = authorization;
  const res = await fetch(url + path, {
    method,
    headers,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}
