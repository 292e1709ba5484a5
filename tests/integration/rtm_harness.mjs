// The RTM side of the integration harness: starts build/rtm-sim (the simulated
// external RTM service) on a port it picks, drives its control API, and opens
// raw /rtm WebSockets that record every message, all with deadlines so that no
// test can hang.
import { spawn } from "node:child_process";
import { once } from "node:events";
import WebSocket from "ws";
import { BUILD, withTimeout } from "./harness.mjs";

const DEADLINE = 10000;

// Starts `rtm-sim --port=0 ...args`; resolves once it prints its listening line.
// With `expectExit`, resolves with {code, stdout, stderr} once it exits instead.
export async function startRtmSim(args = [], { expectExit = false } = {}) {
  const child = spawn(`${BUILD}/rtm-sim`, ["--port=0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = once(child, "exit").then(([code]) => code);
  if (expectExit) {
    const code = await withTimeout(exited, DEADLINE, "rtm-sim to exit");
    return { code, stdout, stderr };
  }
  const url = await withTimeout(
    new Promise((resolve, reject) => {
      const look = () => {
        const m = /^rtm-sim listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(stdout);
        if (m) resolve(m[1]);
      };
      child.stdout.on("data", look);
      look();
      exited.then((code) => reject(new Error(`rtm-sim exited with ${code}: ${stderr}`)));
    }),
    DEADLINE,
    "rtm-sim to listen",
  );
  const sim = {
    url,
    wsUrl: `${url.replace("http://", "ws://")}/rtm`,
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    // A control call: resolves with {status, body (parsed JSON)}.
    control(method, path, body) {
      return request(url, method, path, body);
    },
    async state() {
      const r = await request(url, "GET", "/control/state");
      if (r.status !== 200) throw new Error(`GET /control/state answered ${r.status}`);
      return r.body;
    },
    // Logs in through POST /auth/login; resolves with the Cookie header value
    // ("tld-token=...; tld-user=...") built from the Set-Cookie answers.
    async login(profileId, password) {
      const r = await loginRaw(url, profileId, password);
      if (r.status !== 200) throw new Error(`login of ${profileId} answered ${r.status} ${r.text}`);
      return cookieHeader(r.setCookies);
    },
    // Opens /rtm with these cookies (a recorded socket, see openRtm).
    open(cookies, opts = {}) {
      return openRtm(sim.wsUrl, cookies, opts);
    },
    // Opens /rtm and completes the connect handshake.
    async connect(cookies, opts = {}) {
      const rtm = await openRtm(sim.wsUrl, cookies, opts);
      rtm.send({ connect: { name: "js", version: "1.0" }, id: 1 });
      const reply = JSON.parse(await rtm.next());
      if (reply.id !== 1 || !reply.connect) throw new Error(`unexpected connect reply ${JSON.stringify(reply)}`);
      return rtm;
    },
    // SIGTERM; resolves with the exit code.
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      return withTimeout(exited, DEADLINE, "rtm-sim to stop");
    },
  };
  return sim;
}

async function request(url, method, path, body, { raw, headers = {} } = {}) {
  const res = await withTimeout(
    fetch(url + path, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    }),
    DEADLINE,
    `${method} ${path}`,
  );
  const text = await withTimeout(res.text(), DEADLINE, `body of ${method} ${path}`);
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers, setCookies: res.headers.getSetCookie() };
}

// POST /auth/login as it comes: {status, body, text, setCookies}.
export function loginRaw(url, profileId, password, { raw } = {}) {
  return request(url, "POST", "/auth/login", { profileId, password }, { raw });
}

// Any HTTP request with extra headers (e.g. a Cookie for GET /clients/{id}).
export function httpRequest(url, method, path, { body, raw, headers } = {}) {
  return request(url, method, path, body, { raw, headers });
}

// "a=1; Path=/; HttpOnly", "b=2; Path=/" → "a=1; b=2"
export function cookieHeader(setCookies) {
  return setCookies.map((c) => c.split(";")[0]).join("; ");
}

// A raw /rtm WebSocket. Resolves once open with
//   {ws, messages, next(ms), closed, send(obj|string), close()}
// where `messages` are the text messages so far, `next()` resolves with the
// next unread one, and `closed` resolves with {code, reason}.
// Rejects with an Error carrying {status, body} when the upgrade is refused.
export async function openRtm(wsUrl, cookies, { origin = "https://rtm-sim.test", headers = {} } = {}) {
  const h = { ...headers };
  if (cookies !== undefined) h.cookie = cookies;
  const ws = new WebSocket(wsUrl, { headers: h, origin });
  const messages = [];
  const waiters = [];
  let read = 0;
  ws.on("message", (data, isBinary) => {
    messages.push(isBinary ? data : data.toString());
    for (const w of [...waiters]) w();
  });
  const closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("unexpected-response", (req, res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          const err = new Error(`upgrade refused with ${res.statusCode}: ${body}`);
          err.status = res.statusCode;
          try {
            err.body = JSON.parse(body);
          } catch {
            err.body = body;
          }
          reject(err);
          req.destroy();
        });
      });
      ws.once("error", reject);
    }),
    DEADLINE,
    "the /rtm WebSocket to open",
  );
  ws.on("error", () => {}); // a broken connection shows as its close code
  return {
    ws,
    messages,
    get closed() {
      return withTimeout(closed, DEADLINE, "the /rtm WebSocket to close");
    },
    send(frame) {
      ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    },
    // The next message not yet returned by next().
    next(ms = 5000) {
      if (read < messages.length) return Promise.resolve(messages[read++]);
      return withTimeout(
        new Promise((resolve) => {
          const w = () => {
            if (read < messages.length) {
              waiters.splice(waiters.indexOf(w), 1);
              resolve(messages[read++]);
            }
          };
          waiters.push(w);
        }),
        ms,
        "a message on /rtm",
      );
    },
    close() {
      ws.terminate();
    },
  };
}

// The status and body a refused /rtm upgrade gets.
export async function refusedUpgrade(wsUrl, cookies, opts) {
  try {
    const rtm = await openRtm(wsUrl, cookies, opts);
    rtm.close();
  } catch (err) {
    if (err.status) return { status: err.status, body: err.body };
    throw err;
  }
  throw new Error("the upgrade succeeded, but a refusal was expected");
}

// Polls fn() until it returns a truthy value; fails after `ms`.
export async function eventually(fn, ms = 5000, what = "a condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
