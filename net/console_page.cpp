// The console's page: HTML, CSS and JS in one document, nothing loaded from
// elsewhere. It reads the key from its own ?key= (or asks for it), opens
// /console/events with it and redraws on every snapshot; the chart is a
// <canvas> drawn here.
#include "net/console.hpp"

namespace parley::net {

const char* const console_page = R"PARLEY_CONSOLE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley console</title>
<style>
:root { --bg:#0f1419; --panel:#182029; --line:#2a3542; --fg:#e6edf3; --dim:#8b98a5; --pub:#4fa3ff; --del:#3ccf91; --warn:#f0b429; --bad:#ff6b6b; }
* { box-sizing:border-box; }
[hidden] { display:none !important; }
body { margin:0; background:var(--bg); color:var(--fg); font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; font-weight:600; }
#status { font-size:12px; padding:2px 8px; border-radius:10px; background:var(--line); color:var(--dim); }
#status.live { background:#12402c; color:var(--del); }
#status.down { background:#4a1c1c; color:var(--bad); }
#updated { color:var(--dim); font-size:12px; margin-left:auto; }
main { padding:16px 20px; display:grid; gap:16px; grid-template-columns:repeat(auto-fit,minmax(320px,1fr)); }
.cards { grid-column:1/-1; display:grid; gap:12px; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); }
.card, section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:28px; font-weight:600; font-variant-numeric:tabular-nums; }
.card.warn .value { color:var(--warn); }
section h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.04em; font-weight:600; }
section.wide { grid-column:1/-1; }
canvas { width:100%; height:220px; display:block; }
.legend { display:flex; gap:16px; font-size:12px; color:var(--dim); margin-top:6px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; vertical-align:-1px; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); }
th { color:var(--dim); font-weight:500; font-size:12px; }
td.num, th.num { text-align:right; }
.empty { color:var(--dim); font-style:italic; }
.state-connected { color:var(--del); } .state-backoff, .state-connecting { color:var(--warn); } .state-auth_failed { color:var(--bad); }
.bar { height:6px; background:var(--pub); border-radius:3px; }
form { display:flex; gap:8px; padding:40px 20px; }
input { background:var(--panel); color:var(--fg); border:1px solid var(--line); border-radius:6px; padding:6px 10px; }
button { background:var(--pub); color:#fff; border:0; border-radius:6px; padding:6px 14px; cursor:pointer; }
</style>
</head>
<body>
<header>
  <h1>Parley console</h1>
  <span id="status">connecting</span>
  <span id="updated"></span>
</header>
<form id="login" hidden>
  <input id="keyinput" type="password" placeholder="console key" autocomplete="off">
  <button type="submit">Open</button>
</form>
<main id="main">
  <div class="cards">
    <div class="card"><div class="label">Socket.IO connections</div><div class="value" id="connections">–</div></div>
    <div class="card"><div class="label">Plain WebSocket</div><div class="value" id="plainConnections">–</div></div>
    <div class="card"><div class="label">Engine.IO sessions</div><div class="value" id="sessions">–</div></div>
    <div class="card"><div class="label">Users online</div><div class="value" id="users">–</div></div>
    <div class="card"><div class="label">Rooms</div><div class="value" id="rooms">–</div></div>
    <div class="card"><div class="label">Publishes / s</div><div class="value" id="publishesPerSec">–</div></div>
    <div class="card"><div class="label">Deliveries / s</div><div class="value" id="deliveriesPerSec">–</div></div>
    <div class="card" id="slowCard"><div class="label">Slow clients dropped</div><div class="value" id="slowClientsDropped">–</div></div>
  </div>
  <section class="wide">
    <h2>Throughput (last 2 minutes)</h2>
    <canvas id="chart"></canvas>
    <div class="legend"><span><i style="background:var(--pub)"></i>publishes / s</span><span><i style="background:var(--del)"></i>deliveries / s</span></div>
  </section>
  <section>
    <h2>Busiest rooms</h2>
    <table><thead><tr><th>Room</th><th class="num">Members</th><th style="width:35%"></th></tr></thead><tbody id="roomsBody"></tbody></table>
  </section>
  <section>
    <h2>RTM profiles <span id="rtmStatus"></span></h2>
    <table><thead><tr><th>Profile</th><th>State</th><th class="num">Reconnects</th><th>Last error</th></tr></thead><tbody id="rtmBody"></tbody></table>
  </section>
  <section>
    <h2>Slow or dropped clients</h2>
    <table><tbody>
      <tr><td>Dropped for a full write queue</td><td class="num" id="slowTotal">–</td></tr>
      <tr><td>Socket.IO connects refused</td><td class="num" id="connectRefused">–</td></tr>
      <tr><td>Plain WebSocket refused or closed at a limit</td><td class="num" id="plainRefused">–</td></tr>
      <tr><td>Message store</td><td class="num" id="store">–</td></tr>
    </tbody></table>
  </section>
  <section>
    <h2>Cluster</h2>
    <div id="cluster" class="empty">–</div>
  </section>
</main>
<script>
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let key = params.get("key") || sessionStorage.getItem("parley-console-key") || "";
  const history = []; // [t, publishes/s, deliveries/s]
  const keep = 120;
  let source = null;

  function fmt(n) {
    if (n === null || n === undefined) return "–";
    if (typeof n !== "number") return String(n);
    if (n >= 1e6) return (n / 1e6).toFixed(2) + "M";
    if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return Number.isInteger(n) ? String(n) : n.toFixed(1);
  }
  function set(id, v) { const e = $(id); const s = fmt(v); if (e.textContent !== s) e.textContent = s; }
  function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
  function emptyRow(body, cols, text) { const tr = document.createElement("tr"); const td = cell(tr, text, "empty"); td.colSpan = cols; body.appendChild(tr); }

  function render(s) {
    set("connections", s.connections);
    set("plainConnections", s.plainConnections);
    set("sessions", s.sessions);
    set("users", s.users);
    set("rooms", s.rooms);
    set("publishesPerSec", s.publishesPerSec);
    set("deliveriesPerSec", s.deliveriesPerSec);
    set("slowClientsDropped", s.slowClientsDropped);
    set("slowTotal", s.slowClientsDropped);
    set("connectRefused", s.connectRefused);
    set("plainRefused", s.plainRefused);
    $("store").textContent = s.storeAvailable ? "available" : "unavailable";
    $("slowCard").className = s.slowClientsDropped > 0 ? "card warn" : "card";
    $("updated").textContent = "updated " + new Date(s.t).toLocaleTimeString();

    const rb = $("roomsBody"); rb.textContent = "";
    const rooms = s.busiestRooms || [];
    const top = rooms.length ? Math.max(1, rooms[0].members) : 1;
    for (const r of rooms) {
      const tr = document.createElement("tr");
      cell(tr, r.room); cell(tr, fmt(r.members), "num");
      const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = Math.round(100 * r.members / top) + "%";
      cell(tr, "").appendChild(bar);
      rb.appendChild(tr);
    }
    if (!rooms.length) emptyRow(rb, 3, "no rooms");

    const tb = $("rtmBody"); tb.textContent = "";
    if (!s.rtm) { $("rtmStatus").textContent = "(off)"; emptyRow(tb, 4, "RTM is off (parley.rtm.url is not set)"); }
    else {
      $("rtmStatus").textContent = "(" + s.rtm.status + ")";
      const ids = Object.keys(s.rtm.profiles || {}).sort();
      for (const id of ids) {
        const p = s.rtm.profiles[id] || {};
        const tr = document.createElement("tr");
        cell(tr, id); cell(tr, p.state || "?", "state-" + (p.state || "")); cell(tr, fmt(p.reconnects || 0), "num"); cell(tr, p.lastError || "");
        tb.appendChild(tr);
      }
      if (!ids.length) emptyRow(tb, 4, "no profiles");
    }

    const cl = $("cluster");
    if (!s.cluster) { cl.className = "empty"; cl.textContent = "Single node (not clustered)"; }
    else {
      cl.className = ""; cl.textContent = "";
      for (const n of s.cluster.nodes || []) { const d = document.createElement("div"); d.textContent = (n.id || n.name || "?") + " — " + (n.state || ""); cl.appendChild(d); }
    }

    history.push([s.t, s.publishesPerSec || 0, s.deliveriesPerSec || 0]);
    while (history.length > keep) history.shift();
    draw();
  }

  function draw() {
    const c = $("chart");
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(document.documentElement);
    const left = 52, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    let max = 1;
    for (const p of history) max = Math.max(max, p[1], p[2]);
    const mag = Math.pow(10, Math.floor(Math.log10(max)));
    max = Math.ceil(max / mag) * mag;
    g.font = "11px system-ui, sans-serif"; g.fillStyle = css.getPropertyValue("--dim"); g.strokeStyle = css.getPropertyValue("--line"); g.lineWidth = 1;
    g.textAlign = "right"; g.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      g.beginPath(); g.moveTo(left, Math.round(y) + 0.5); g.lineTo(left + pw, Math.round(y) + 0.5); g.stroke();
      g.fillText(fmt((max * i) / 4), left - 6, y);
    }
    g.textAlign = "left"; g.textBaseline = "top"; g.fillText("-" + keep + " s", left, top + ph + 4);
    g.textAlign = "right"; g.fillText("now", left + pw, top + ph + 4);
    const x = (i) => left + pw - ((history.length - 1 - i) * pw) / (keep - 1);
    const line = (k, color) => {
      if (history.length < 2) return;
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      history.forEach((p, i) => { const y = top + ph - (p[k] / max) * ph; if (i) g.lineTo(x(i), y); else g.moveTo(x(i), y); });
      g.stroke();
    };
    line(1, css.getPropertyValue("--pub")); line(2, css.getPropertyValue("--del"));
  }

  function status(text, cls) { const e = $("status"); e.textContent = text; e.className = cls || ""; }

  function open() {
    if (source) source.close();
    source = new EventSource("/console/events?key=" + encodeURIComponent(key));
    source.onopen = () => status("live", "live");
    source.onmessage = (e) => { status("live", "live"); try { render(JSON.parse(e.data)); } catch (err) { console.error(err); } };
    source.onerror = () => status(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting", "down");
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    key = $("keyinput").value;
    sessionStorage.setItem("parley-console-key", key);
    $("login").hidden = true; $("main").hidden = false;
    open();
  });
  window.addEventListener("resize", draw);
  if (key) open();
  else { $("login").hidden = false; $("main").hidden = true; status("key needed"); }
  draw();
})();
</script>
</body>
</html>
)PARLEY_CONSOLE";

} // namespace parley::net
