// tools/bench's driver: runs every scenario of build/loadgen against Parley and
// against the socket.io 4.8 peer (tools/bench/peer), each server fresh per
// scenario and pinned to core 0, the generator pinned to core 1; prints one
// table with both figures and the ratio, writes bench-results/latest.{json,md}
// and the chart bench-results/bench.png (gnuplot). See tools/bench/README.md.
//
//   node tools/bench/bench.mjs [--quick] [--only=name,name] [--update-readme]
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const build = process.env.PARLEY_BUILD_DIR ?? join(root, "build");
const out = join(root, "bench-results");
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const updateReadme = args.includes("--update-readme");
const only = (args.find((a) => a.startsWith("--only=")) ?? "").slice(7).split(",").filter(Boolean);
for (const a of args)
  if (!["--quick", "--update-readme"].includes(a) && !a.startsWith("--only="))
    throw new Error(`unknown argument ${a} (use --quick, --only=a,b, --update-readme)`);

const SECRET = "bench-secret";
const API_KEY = "bench-api-key";
const twoCores = cpus().length >= 2;
const SERVER_CORE = "0";
const GEN_CORE = twoCores ? "1" : "0";

// Each scenario: loadgen arguments (full / quick), whether presence broadcast is
// on; optionally extra server options (`parley`, `peer`), extra loadgen
// arguments for the peer only (`peerArgs`), and which servers run it (`kinds`).
const q = (full, small) => (quick ? small : full);
const fanout1000 = ["--scenario=fanout", "--members=1000", "--inflight=32", `--duration=${q(5, 2)}`];
const scenarios = [
  { name: "fanout-1000-saturated", args: fanout1000 },
  // The same with nothing stored (Parley only: the peer has no store, its figure would be the one above).
  { name: "fanout-1000-saturated-nostore", kinds: ["parley"], parley: ["--parley.store.rooms=[]"], args: fanout1000 },
  // The same fan-out to seed 003's plain WebSocket dialog sockets: 1000 widget
  // sockets of one dialog, each message published through
  // POST /api/v1/dialogs/bench/messages (stored on Parley); the peer routes
  // them with the npm ws 8.18 server. Parley admits the widget credential
  // from its list and takes 1000 sockets on one dialog (its default is 50).
  {
    name: "plainws-fanout-1000-saturated",
    parley: ['--parley.plainws.assistants=["bench"]', "--parley.plainws.max-per-dialog=1000"],
    args: ["--scenario=plainfanout", `--api-key=${API_KEY}`, "--members=1000", "--inflight=32", `--duration=${q(5, 2)}`],
  },
  { name: "fanout-1000-50k", args: ["--scenario=fanout", "--members=1000", "--rate=50", `--duration=${q(5, 2)}`] },
  { name: "fanout-5000-saturated", args: ["--scenario=fanout", `--members=${q(5000, 2000)}`, "--inflight=16", `--duration=${q(5, 2)}`] },
  { name: "chat-100x10", args: ["--scenario=chat", "--rooms=100", "--members=10", "--rate=2000", "--typing", `--duration=${q(5, 2)}`] },
  { name: "connect-storm", args: ["--scenario=connect", `--count=${q(10000, 3000)}`, "--concurrency=256"] },
  { name: "idle-19k", args: ["--scenario=idle", `--count=${q(19000, 5000)}`, "--concurrency=256", "--settle=3"], timeout: 240 },
  { name: "presence-churn", presence: true, args: ["--scenario=presence", `--observers=${q(1000, 300)}`, "--churners=16", "--count=500000", `--duration=${q(5, 2)}`] },
  { name: "reconnect-storm", args: ["--scenario=reconnect", `--count=${q(5000, 2000)}`, "--concurrency=256", "--settle=1"] },
  { name: "stuck-baseline", args: ["--scenario=fanout", "--members=100", "--rate=100", "--size=20000", `--duration=${q(8, 3)}`] },
  { name: "stuck-reader", args: ["--scenario=fanout", "--members=100", "--rate=100", "--size=20000", "--stuck=5", `--duration=${q(8, 3)}`] },
  // One connection writes a burst of events: with Parley's defaults (event rate
  // limit on: the flooder is refused, then disconnected), and with the limit
  // off (only backpressure bounds it). The publisher stays within the limit.
  { name: "flood-baseline", rateLimit: true, args: ["--scenario=fanout", "--members=100", "--rate=50", `--duration=${q(6, 3)}`] },
  { name: "flood-burst", rateLimit: true, args: ["--scenario=fanout", "--members=100", "--rate=50", `--flood=${q(200000, 100000)}`, `--duration=${q(6, 3)}`] },
  { name: "flood-burst-unlimited", args: ["--scenario=fanout", "--members=100", "--rate=50", `--flood=${q(200000, 100000)}`, `--duration=${q(6, 3)}`] },
  // Publishes through the backend API to 100 rooms: Parley stores each (SQLite,
  // sync=full as shipped) and answers once it is committed; the peer emits in
  // memory and answers {"ok":true} (no id or offset to check: --no-offsets).
  { name: "publish-durable-saturated", peerArgs: ["--no-offsets"], args: ["--scenario=publish", `--api-key=${API_KEY}`, "--rooms=100", "--inflight=256", `--duration=${q(5, 2)}`] },
  { name: "publish-durable-20k", peerArgs: ["--no-offsets"], args: ["--scenario=publish", `--api-key=${API_KEY}`, "--rooms=100", "--rate=20000", "--connections=256", `--duration=${q(5, 2)}`] },
  // One client misses 10,000 events and recovers them; the peer runs with
  // socket.io's connectionStateRecovery.
  { name: "replay-10k", peer: ["--recovery=true"], args: ["--scenario=replay", `--api-key=${API_KEY}`, "--count=10000", `--runs=${q(3, 1)}`] },
].filter((s) => only.length === 0 || only.includes(s.name));

// The rows of the table: [label, scenario, field(s) → value, unit, better, target].
const rows = [
  { label: "1×1000 fan-out, deliveries/s at saturation", s: "fanout-1000-saturated", v: (r) => r.deliveries_per_s, unit: "/s", better: "higher", target: { ratio: 10, text: "≥ 10× peer" } },
  { label: "server CPU per delivery (1×1000 saturated)", s: "fanout-1000-saturated", v: (r) => r.server_cpu_us_per_delivery, unit: "µs", better: "lower", target: { max: 1, text: "≤ 1 µs" } },
  { label: "plain WebSocket 1×1000 fan-out (dialog sockets; peer: npm ws 8.18), deliveries/s at saturation", s: "plainws-fanout-1000-saturated", v: (r) => r.deliveries_per_s, unit: "/s", better: "higher", target: { ratio: 10, text: "≥ 10× peer" } },
  { label: "server CPU per delivery (plain WebSocket 1×1000 saturated)", s: "plainws-fanout-1000-saturated", v: (r) => r.server_cpu_us_per_delivery, unit: "µs", better: "lower", target: { max: 1, text: "≤ 1 µs" } },
  { label: "server CPU per delivery (1×1000 at 50k/s)", s: "fanout-1000-50k", v: (r) => r.server_cpu_us_per_delivery, unit: "µs", better: "lower" },
  { label: "last member reached at 50k deliveries/s, p99", s: "fanout-1000-50k", v: (r) => r.last_member_p99_us / 1000, unit: "ms", better: "lower", target: { max: 5, text: "≤ 5 ms" } },
  { label: "1×5000 fan-out, deliveries/s at saturation", s: "fanout-5000-saturated", v: (r) => r.deliveries_per_s, unit: "/s", better: "higher" },
  { label: "chat 100×10 + typing, delivery p99", s: "chat-100x10", v: (r) => r.delivery_p99_us / 1000, unit: "ms", better: "lower" },
  { label: "chat 100×10 + typing, server CPU per delivery", s: "chat-100x10", v: (r) => r.server_cpu_us_per_delivery, unit: "µs", better: "lower" },
  { label: "new authenticated connections per second", s: "connect-storm", v: (r) => r.connections_per_s, unit: "/s", better: "higher", target: { min: 20000, text: "≥ 20k/s" } },
  { label: "RSS per idle authenticated connection", s: "idle-19k", v: (r) => r.rss_per_connection_bytes / 1024, unit: "KiB", better: "lower", target: { max: 4, text: "≤ 4 KiB" } },
  { label: "presence churn, connect+close cycles/s", s: "presence-churn", v: (r) => r.cycles_per_s, unit: "/s", better: "higher" },
  { label: "presence churn, user:online p99", s: "presence-churn", v: (r) => r.online_p99_us / 1000, unit: "ms", better: "lower" },
  { label: "reconnect storm, all back after", s: "reconnect-storm", v: (r) => r.reconnect_s, unit: "s", better: "lower" },
  { label: "stuck readers: server RSS growth", s: "stuck-reader", v: (r) => (r.server_rss_end_bytes - r.server_rss_start_bytes) / 1048576, unit: "MiB", better: "lower", target: { text: "bounded" } },
  { label: "stuck readers: others' delivery p99 (without → with)", s: "stuck-reader", v: (r, all) => r.delivery_p99_us / 1000, base: (all) => all["stuck-baseline"]?.delivery_p99_us / 1000, unit: "ms", better: "lower", target: { text: "unchanged" } },
  { label: `one socket's burst of ${quick ? "100k" : "200k"} events: server RSS growth`, s: "flood-burst", v: (r) => (r.server_rss_peak_bytes - r.server_rss_start_bytes) / 1048576, unit: "MiB", better: "lower", target: { max: 50, text: "< 50 MiB" } },
  { label: "one socket's burst: others' delivery p99 (without → with)", s: "flood-burst", v: (r, all) => r.delivery_p99_us / 1000, base: (all) => all["flood-baseline"]?.delivery_p99_us / 1000, unit: "ms", better: "lower", target: { text: "unchanged" } },
  { label: "the same burst, Parley's rate limit off: server RSS growth", s: "flood-burst-unlimited", v: (r) => (r.server_rss_peak_bytes - r.server_rss_start_bytes) / 1048576, unit: "MiB", better: "lower", target: { max: 50, text: "< 50 MiB" } },
  { label: "the same burst, Parley's rate limit off: others' delivery p99 (without → with)", s: "flood-burst-unlimited", v: (r, all) => r.delivery_p99_us / 1000, base: (all) => all["flood-baseline"]?.delivery_p99_us / 1000, unit: "ms", better: "lower" },
  { label: "publishes through the API, acked/s at saturation (Parley durable: SQLite, sync=full; peer in memory)", s: "publish-durable-saturated", v: (r) => r.acked_per_s, unit: "/s", better: "higher", target: { min: 20000, text: "≥ 20k/s" } },
  { label: "publish ack p99 at 20k/s offered (acked/s reached)", s: "publish-durable-20k", v: (r) => r.ack_p99_us / 1000, show: (v, r) => `${fmt(v, "ms")} (${fmt(r.acked_per_s, "/s")})`, unit: "ms", better: "lower", target: { max: 10, text: "≤ 10 ms" } },
  { label: "1×1000 fan-out deliveries/s, store on ÷ store off", s: "fanout-1000-saturated-nostore", parleyOnly: true, v: (r, all) => (all["fanout-1000-saturated"]?.error ? NaN : (100 * all["fanout-1000-saturated"]?.deliveries_per_s) / r.deliveries_per_s), show: (v, r, all) => `${fmt(all["fanout-1000-saturated"]?.deliveries_per_s, "/s")} ÷ ${fmt(r.deliveries_per_s, "/s")} = ${fmt(v, "%")}`, unit: "%", better: "higher", target: { min: 90, text: "≥ 90 %" } },
  { label: `recovery replay of 10k missed events to one client${quick ? "" : ", median of 3"} (peer: connectionStateRecovery)`, s: "replay-10k", v: (r) => r.replay_ms, show: (v, r) => `${fmt(v, "ms")} (${fmt(r.events_per_s, "/s")})`, unit: "ms", better: "lower", target: { max: 200, text: "≤ 200 ms" } },
];

function log(...a) {
  console.error("bench:", ...a);
}

// Starts a server pinned to SERVER_CORE with the open-file soft limit raised to
// the hard one, for scenario `s`; resolves with {url, pid, stop}.
async function startServer(kind, s) {
  const presence = s.presence === true, rateLimit = s.rateLimit === true;
  let cmd;
  let scratch; // Parley's message log, removed when it stops
  if (kind === "parley") {
    scratch = mkdtempSync(join(tmpdir(), "parley-bench-"));
    const conf = readFileSync(join(root, "config/caf-application.conf"), "utf8")
      .replace(/^broadcast=true$/m, `broadcast=${presence}`)
      .replace(/^level="info"$/m, 'level="warn"')
      .replace(/^max-threads=2$/m, "max-threads=1");
    const file = join(out, `parley-${presence}.conf.tmp`);
    writeFileSync(file, conf);
    cmd = [join(build, "parley"), `--config-file=${file}`, "--parley.http.port=0", `--parley.auth.jwt-secret=${SECRET}`,
      // The fan-out and chat publishers send more than a chat user would: the
      // per-socket event rate limit is off here (the peer has none either),
      // except in the scenarios that show it at work.
      "--parley.limits.max-connections=200000", `--parley.store.path=${join(scratch, "parley.db")}`,
      `--parley.api.key=${API_KEY}`, ...(rateLimit ? [] : ["--parley.limits.events-per-second=0"]), ...(s.parley ?? [])];
  } else {
    cmd = ["node", join(root, "tools/bench/peer/server.mjs"), "--port=0", `--secret=${SECRET}`, `--presence-broadcast=${presence}`,
      `--api-key=${API_KEY}`, ...(s.peer ?? [])];
  }
  const child = spawn("sh", ["-c", 'ulimit -Sn "$(ulimit -Hn)"; exec taskset -c "$0" "$@"', SERVER_CORE, ...cmd], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start: ${text}`)), 15000);
    const look = (d) => {
      text += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on("data", look);
    child.stderr.on("data", look);
    child.on("exit", (code) => reject(new Error(`${kind} exited with ${code}: ${text}`)));
  });
  return {
    url,
    pid: child.pid, // sh exec'd taskset, which exec'd the server: same pid
    stop: () =>
      new Promise((resolve) => {
        const done = () => {
          if (scratch) rmSync(scratch, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once("exit", done);
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000);
      }),
  };
}

function runLoadgen(url, pid, s, kind) {
  const a = [
    "-c",
    'ulimit -Sn "$(ulimit -Hn)"; exec taskset -c "$0" "$@"',
    GEN_CORE,
    join(build, "loadgen"),
    `--url=${url}`,
    `--server-pid=${pid}`,
    `--secret=${SECRET}`,
    `--timeout=${s.timeout ?? 120}`,
    ...s.args,
    ...(kind === "peer" ? s.peerArgs ?? [] : []),
  ];
  return new Promise((resolve) => {
    const child = spawn("sh", a, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => {
      try {
        resolve(JSON.parse(stdout));
      } catch {
        resolve({ error: `loadgen exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}` });
      }
    });
  });
}

// The floor under "last member reached": plain one-write-per-member from one core.
let floor = "";
try {
  floor = execFileSync(join(build, "rawfloor"), ["1000", "100", "20"], { encoding: "utf8" }).trim();
  log(`raw loopback floor: ${floor}`);
} catch (e) {
  log(`rawfloor failed: ${e.message.split("\n")[0]}`);
}

const results = { parley: {}, peer: {} };
for (const s of scenarios) {
  for (const kind of s.kinds ?? ["parley", "peer"]) {
    const server = await startServer(kind, s);
    log(`${s.name} × ${kind} …`);
    const r = await runLoadgen(server.url, server.pid, s, kind);
    await server.stop();
    if (r.error) log(`  ${kind} ${s.name}: ${r.error}`);
    results[kind][s.name] = r;
  }
}

function fmt(v, unit) {
  if (v === undefined || v === null || Number.isNaN(v)) return "—";
  if (unit === "%") return `${v.toFixed(v >= 100 ? 0 : 1)} %`;
  if (unit === "/s") return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0);
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${unit}`;
}

const table = [];
for (const row of rows) {
  const pr = results.parley[row.s], nr = results.peer[row.s];
  if (!pr && !nr) continue;
  const val = (r, all) => {
    const x = r && !r.error ? row.v(r, all) : undefined;
    return Number.isFinite(x) ? x : undefined;
  };
  const p = val(pr, results.parley), n = val(nr, results.peer);
  let ratio;
  if (p !== undefined && n !== undefined && p > 0 && n > 0) ratio = row.better === "higher" ? p / n : n / p;
  let met = "";
  const t = row.target;
  if (t && p !== undefined) {
    if (t.ratio) met = ratio >= t.ratio;
    else if (t.max !== undefined) met = p <= t.max;
    else if (t.min !== undefined) met = p >= t.min;
    else if (row.base) {
      const b = row.base(results.parley);
      met = p <= Math.max(b * 1.5, b + 1);
    } else if (t.text === "bounded") met = p <= 5 * 4 + 16;  // 5 stuck × the 4 MiB write-queue cap, + slack
  }
  const cell = (v, r, all) => {
    if (row.show && v !== undefined) return row.show(v, r, all);
    return row.base ? `${fmt(row.base(all), row.unit)} → ${fmt(v, row.unit)}` : fmt(v, row.unit);
  };
  table.push({
    metric: row.label,
    peer: row.parleyOnly ? "n/a" : cell(n, nr, results.peer),
    parley: cell(p, pr, results.parley),
    ratio: ratio === undefined ? "—" : `${ratio.toFixed(ratio >= 10 ? 0 : 1)}×`,
    ratioValue: ratio,
    target: t ? t.text : "",
    met: t ? (met === true ? "yes" : met === false ? "**no**" : "—") : "",
  });
}

const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
const cpuModel = cpus()[0]?.model ?? "unknown CPU";
let md = `| metric | socket.io 4.8 (peer) | Parley | Parley better by | target | met |\n|---|---|---|---|---|---|\n`;
for (const t of table) md += `| ${t.metric} | ${t.peer} | ${t.parley} | ${t.ratio} | ${t.target} | ${t.met} |\n`;
md += `\n${quick ? "Quick run (smaller counts). " : ""}Measured ${when} on ${cpus().length} × ${cpuModel}; ` +
  `server on core ${SERVER_CORE}, loadgen on core ${GEN_CORE} (taskset); Parley with one CAF worker.\n` +
  (floor ? `Raw loopback floor in the same run (\`build/rawfloor\`: plain send() of 150 bytes to 1000 connections from one core): ${floor.replace(/^N=1000 rounds=100 gap=20ms: /, "")}.\n` : "");
console.log(md);

if (!existsSync(out)) mkdirSync(out);
const tag = quick ? "quick" : "latest";
writeFileSync(join(out, `${tag}.json`), JSON.stringify({ when, quick, cpus: cpus().length, cpuModel, floor, results, table }, null, 2) + "\n");
writeFileSync(join(out, `${tag}.md`), md);

// The chart: how many times better Parley is, per metric (log scale).
const chartRows = table.filter((t) => t.ratioValue !== undefined);
const dat = chartRows.map((t, i) => `${i} "${t.metric.replace(/"/g, "'")}" ${t.ratioValue}`).join("\n") + "\n";
writeFileSync(join(out, "chart.dat.tmp"), dat);
const png = join(out, quick ? "bench-quick.png" : "bench.png");
const gp = `set terminal pngcairo size 1100,${120 + 34 * chartRows.length} font "sans,10"
set output "${png}"
set title "Parley vs socket.io 4.8 — times better (higher is better, log scale), ${when}"
set style fill solid 0.8
set logscale x 10
set xrange [0.1:*]
set yrange [-0.7:${chartRows.length - 0.3}]
set ytics scale 0
set grid xtics
set key off
set xlabel "Parley better by (×)"
unset colorbox
plot "${join(out, "chart.dat.tmp")}" using (($3 > 1 ? 1 : $3)):1:(1):($3):($1-0.35):($1+0.35):ytic(2) with boxxyerrorbars lc rgb "#3a7bd5", \\
     "" using ($3):1:(sprintf("%.1f×", $3)) with labels left offset 0.5,0
`;
try {
  execFileSync("gnuplot", [], { input: gp });
  log(`chart: ${png}`);
} catch (e) {
  log(`no chart (gnuplot: ${e.message.split("\n")[0]})`);
}

if (updateReadme && !quick) {
  const readme = join(root, "README.md");
  const text = readFileSync(readme, "utf8");
  const begin = "<!-- bench:begin -->", end = "<!-- bench:end -->";
  const i = text.indexOf(begin), j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error("README.md has no bench markers");
  writeFileSync(readme, text.slice(0, i + begin.length) + "\n" + md + "\n![Parley vs socket.io 4.8](bench-results/bench.png)\n" + text.slice(j));
  log("README.md table updated");
}
