// The understudy console: plain JavaScript, no libraries. The API token
// lives in sessionStorage (gone with the tab) and travels only in the
// Authorization header, never in a URL. Updates come from /stream
// (server-sent events read through fetch, which can send the header; the
// daemon ends each stream after a few seconds and the page reconnects),
// falling back to polling /status.
"use strict";

const KEY = "understudy-token";
const COLOURS = { Active: "#12703a", Passive: "#1f5fa8", Disabled: "#c99a2e", Maintenance: "#c99a2e", Unavailable: "#b3261e" };
let samples = [];
let events = [];
let lastEvent = 0;
let readOnly = true;
let status = null;

const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem(KEY); }

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + token() };
  return fetch(path, { ...options, headers, cache: "no-store" });
}

function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }

function cell(row, value, cls) {
  const td = text(document.createElement("td"), value);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

// An age as the CLI's status shows it: "<1s", "42s", "3m 5s", "2h 10m".
function ago(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 1) return "<1s";
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function when(seen) {
  if (!seen) return "-";
  const t = new Date(seen.at);
  const age = ago(seen.age_ms);
  return t.toLocaleTimeString() + " (" + age + " ago)";
}

function application(node, report) {
  if (node.local && report.application_recovery) return report.application_recovery;
  if (node.failing && node.failing.startsWith("web service")) return "not answering";
  if (report.holder.node === node.name) return "serving";
  return node.status === "Unavailable" ? "unknown" : "standing by";
}

function render(report) {
  status = report;
  text($("cluster"), report.cluster + (report.alias ? " — " + report.alias : ""));
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const n of report.nodes) {
    const row = body.insertRow();
    row.dataset.node = n.name;
    cell(row, n.name + (n.local ? " (this node)" : ""), "name");
    cell(row, n.role);
    cell(row, n.status, "status " + n.status.split(" ")[0]);
    cell(row, when(n.last_heartbeat), "heartbeat");
    cell(row, n.failing || "-", "failing");
    cell(row, n.takeover_in ? n.takeover_in.text : (n.blocked ? "held back: " + n.blocked : "-"), "takeover");
    cell(row, n.term == null ? "-" : n.term, "term");
    cell(row, n.config_match == null ? "-" : (n.config_match ? "match" : "DIFFERS"), "config");
    cell(row, application(n, report), "application");
  }
  const held = report.holder.node;
  text($("holder"), (report.vips && report.vips.length ? report.vips.join(", ") : report.vip) +
    (held ? " held by " + held + (report.holder.since ? " since " + when(report.holder.since) : "") : " held by nobody"));
  const t = report.last_takeover;
  text($("last-takeover"), t ? "Last takeover: " + t.node + " at " + when(t.at) + (t.duration_ms != null ? ", " + Math.round(t.duration_ms) + " ms" : "") + ": " + t.cause : "No takeover known to this node.");
  renderMirrors(report);
  drawTimeline();
}

// Each [[mirror]] towards each node, as this node last ran it.
function renderMirrors(report) {
  const list = $("mirrors");
  list.replaceChildren();
  for (const m of report.mirrors || []) {
    const item = document.createElement("li");
    item.dataset.mirror = m.mirror + " " + m.node;
    let line = "Mirror " + m.mirror + " to " + m.node + ": ";
    if (m.error) line += "failing for " + m.failing_for_s + " s: " + m.error;
    else if (m.last_success) line += "ok at " + m.last_success + " (" + m.files + " files, " + m.bytes + " bytes in " + m.duration_ms + " ms)";
    else line += "not run yet";
    if (m.backup) line += "; " + m.backed_up_files + " replaced file(s) kept in " + m.backup + " there";
    item.className = m.error ? "failing" : "";
    list.append(text(item, line));
  }
  const p = report.restart_to_apply;
  text($("restart-to-apply"), p ? "Configuration written but not applied: restart " + p.nodes.join(", ") + " to apply it (" + p.reasons.join("; ") + ")" : "");
}

function renderEvents() {
  const list = $("events");
  list.replaceChildren();
  for (const e of events) {
    const li = document.createElement("li");
    const took = e.duration_ms != null ? " (" + Math.round(e.duration_ms) + " ms)" : "";
    text(li, new Date(e.at_ms).toLocaleTimeString() + " " + e.kind + ": " + e.cause + ", term " + e.term + took);
    list.appendChild(li);
  }
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

// One lane per node, coloured by its status over the last hour; a purple
// line where the common IP moved, a red tick where this node judged the
// peer failing.
function drawTimeline() {
  const box = $("timeline");
  box.replaceChildren();
  if (!status) return;
  // The last hour, or since the first sample when the daemon is younger
  // (so that a fresh pair is not a sliver at the right edge).
  const end = Date.now();
  const first = samples.length ? samples[0].at_ms - 1000 : end - 3600 * 1000;
  const start = Math.max(end - 3600 * 1000, first);
  const label = $("timeline-since");
  if (label) text(label, "since " + new Date(start).toLocaleTimeString());
  const x = (ms) => Math.max(0, (ms - start) / (end - start) * 1000);
  const names = status.nodes.map((n) => n.name);
  const lane = 100 / names.length;
  names.forEach((name, i) => {
    box.appendChild(text(svg("text", { x: 4, y: i * lane + 14, "font-size": 11 }), name));
    for (let k = 0; k < samples.length; k++) {
      const s = samples[k];
      const next = k + 1 < samples.length ? samples[k + 1].at_ms : end;
      // "Active (claiming)" is drawn as Active.
      const word = (s.nodes.find((n) => n[0] === name) || [name, "Unavailable"])[1].split(" ")[0];
      box.appendChild(svg("rect", { x: x(s.at_ms), y: i * lane + 18, width: Math.max(1, x(next) - x(s.at_ms)), height: lane - 22, fill: COLOURS[word] || "#999" }));
    }
  });
  for (let k = 1; k < samples.length; k++) {
    if (samples[k].holder !== samples[k - 1].holder) {
      box.appendChild(svg("line", { x1: x(samples[k].at_ms), x2: x(samples[k].at_ms), y1: 0, y2: 120, stroke: "#6b3fa0", "stroke-width": 2 }));
    }
    if (samples[k].failing) {
      box.appendChild(svg("rect", { x: x(samples[k].at_ms), y: 104, width: 2, height: 14, fill: "#b3261e" }));
    }
  }
}

async function loadHistory() {
  const r = await api("/history");
  if (!r.ok) return;
  const h = await r.json();
  samples = h.samples;
  events = h.events;
  lastEvent = events.length ? events[0].id : 0;
  renderEvents();
}

function onFrame(kind, data) {
  const value = JSON.parse(data);
  if (kind === "status") {
    render(value);
  } else if (kind === "sample") {
    samples.push(value);
    drawTimeline();
  } else if (kind === "event" && value.id > lastEvent) {
    lastEvent = value.id;
    events.unshift(value);
    renderEvents();
  }
}

async function stream() {
  for (;;) {
    try {
      const r = await api("/stream?after=" + lastEvent);
      if (!r.ok || !r.body) throw new Error("stream " + r.status);
      text($("live"), "live");
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let kind = "message";
          const data = [];
          for (const line of frame.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) onFrame(kind, data.join("\n"));
        }
      }
    } catch (e) {
      // No streaming (a proxy that buffers, say): poll instead.
      text($("live"), "polling");
      const r = await api("/status").catch(() => null);
      if (r && r.ok) render((await r.json()).status);
      await new Promise((done) => setTimeout(done, 2000));
    }
  }
}

async function act(button) {
  const action = button.dataset.action;
  const force = button.dataset.force !== undefined && $("force").checked;
  let query = force ? "?force=true" : "";
  if (button.dataset.node !== undefined) {
    const node = prompt("Delete which departed node's record?");
    if (!node) return;
    query += (query ? "&" : "?") + "node=" + encodeURIComponent(node);
  }
  // Disable with force hands the common IP over first.
  const moves = button.dataset.moves !== undefined || (action === "disable" && force);
  if (moves && !confirm(button.textContent + ": this moves the common IP. Go ahead?")) return;
  const r = await api("/actions/" + action + query, { method: "POST" });
  const answer = await r.json().catch(() => ({ ok: false, message: "HTTP " + r.status }));
  const el = $("answer");
  el.className = answer.ok ? "ok" : "refused";
  text(el, (answer.ok ? "applied: " : "refused: ") + (answer.message || action));
  if (answer.status) render(answer.status);
}

async function start() {
  const r = await api("/whoami");
  if (!r.ok) {
    sessionStorage.removeItem(KEY);
    text($("login-error"), r.status === 401 ? "refused: that token is not valid" : "refused: HTTP " + r.status);
    return;
  }
  const me = await r.json();
  readOnly = me.read_only;
  text($("session"), "logged in as " + me.name + (readOnly ? " (read-only)" : ""));
  $("actions").hidden = readOnly;
  $("login").hidden = true;
  $("console").hidden = false;
  await loadHistory();
  const s = await api("/status");
  if (s.ok) render((await s.json()).status);
  stream();
  setInterval(drawTimeline, 10000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("login-token").value.trim());
    $("login-token").value = "";
    start();
  });
  for (const b of document.querySelectorAll("[data-action]")) b.addEventListener("click", () => act(b));
  if (token()) start();
});
