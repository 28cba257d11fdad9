/**
 * The status page's inline browser script, as a string. It reads the status
 * embedded in the page, packs the attempts into rows (one per worker slot,
 * or one per task), draws the timeline and the run-time histogram on
 * canvases in one pass each, explains a bar on hover, opens its log on
 * click, and keeps a running job's page live: over HTTP it fetches the page
 * again every 2 seconds and swaps it in; from a file it reloads every 10
 * seconds. It stops once the job is done, failed or interrupted.
 *
 * The layout and drawing parts are in `script_layout.ts` and
 * `script_draw.ts`; all parts share one function scope.
 *
 * For tests, the timeline canvas carries `data-bars` (bars drawn, one per
 * attempt) and the script sets `window.kubefaceTimeline` and
 * `window.kubefaceHistogram`.
 *
 * Plain ES2017, no template literals (the body is a TypeScript raw string).
 *
 * @module
 */

import { OUTCOME_COLOURS } from "./page_style.ts";
import { DRAW_SCRIPT } from "./script_draw.ts";
import { LAYOUT_SCRIPT } from "./script_layout.ts";

const BODY = String.raw`
"use strict";
var LIVE = { preparing: true, running: true };
var KINDS = ["ok", "task-error", "crash", "timeout", "cancelled", "disrupted"];
var MAX_ROW = 22, MAX_PLOT = 600, GUTTER = 64, AXIS = 22, TOP = 4;
var ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
var rowsMode = "slots";
var model = null;
var hit = null;
var timer = 0;

function byId(id) { return document.getElementById(id); }

function fmt(ms) {
  if (!isFinite(ms)) return "?";
  if (ms < 1000) return Math.round(ms) + "ms";
  var s = ms / 1000;
  if (s < 60) return s.toFixed(1) + "s";
  var m = Math.floor(s / 60);
  if (m < 60) return m + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
  return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
}

function readModel() {
  var el = byId("kubeface-status");
  if (!el) return null;
  var status = JSON.parse(el.textContent);
  var now = Date.parse(status.updatedAt);
  var t0 = Date.parse(status.startedAt), t1 = now, list = [];
  for (var i = 0; i < status.tasks.length; i++) {
    var task = status.tasks[i];
    for (var j = 0; j < task.attempts.length; j++) {
      var a = task.attempts[j];
      var sub = Date.parse(a.submittedAt);
      var start = a.startedAt ? Date.parse(a.startedAt) : NaN;
      var end = a.endedAt ? Date.parse(a.endedAt) : NaN;
      var item = {
        task: task.task, id: a.id, n: j + 1, sub: sub, start: start,
        end: isNaN(end) ? now : end, open: isNaN(end), started: !isNaN(start),
        kind: a.outcome || "running", spec: !!a.speculative, host: a.host || "",
        detail: (a.detail || "").replace(ANSI, ""), row: 0, from: sub,
      };
      if (!item.started && item.open) item.kind = "running";
      if (sub < t0) t0 = sub;
      if (item.end > t1) t1 = item.end;
      list.push(item);
    }
  }
  return { status: status, now: now, t0: t0, t1: Math.max(t1, t0 + 1000), attempts: list };
}

function barAt(ev) {
  if (!hit) return null;
  var rect = ev.target.getBoundingClientRect();
  var px = ev.clientX - rect.left, py = ev.clientY - rect.top;
  var row = hit.pack.rows[Math.floor((py - TOP) / hit.rowH)];
  if (!row) return null;
  var t = hit.t0 + (px - hit.x0) / hit.scale, tol = 3 / hit.scale, best = null;
  for (var i = 0; i < row.length; i++) {
    var a = row[i];
    if (t >= a.from - tol && t <= a.end + tol) {
      best = a;
      if (a.started && t >= a.start - tol) break;
    }
  }
  return best;
}

function describe(a) {
  var rel = function (t) { return "+" + fmt(t - model.t0); };
  var lines = ["task " + a.task + " · attempt " + a.n + (a.spec ? " (speculative)" : "") + " · " + a.id];
  lines.push((a.open ? (a.started ? "running" : "waiting") : a.kind) + (a.host ? " on " + a.host : ""));
  lines.push("submitted " + rel(a.sub) + (a.started ? ", started " + rel(a.start) : "") +
    (a.open ? "" : ", ended " + rel(a.end)));
  if (a.started) lines.push("waited " + fmt(a.start - a.sub) + ", ran " + fmt(a.end - a.start));
  if (a.detail) lines.push(a.detail.length > 200 ? a.detail.slice(0, 200) + "…" : a.detail);
  lines.push("click to open its log");
  return lines.join("\n");
}

function wire() {
  var canvas = byId("timeline"), chart = canvas && canvas.parentNode;
  if (!canvas) return;
  var tip = document.createElement("div");
  tip.className = "tip";
  tip.hidden = true;
  chart.appendChild(tip);
  canvas.addEventListener("mousemove", function (ev) {
    var a = barAt(ev);
    canvas.style.cursor = a ? "pointer" : "";
    tip.hidden = !a;
    if (!a) return;
    tip.textContent = describe(a);
    var box = chart.getBoundingClientRect();
    var left = ev.clientX - box.left + 14;
    tip.style.left = Math.min(left, box.width - tip.offsetWidth - 4) + "px";
    tip.style.top = (ev.clientY - box.top + 14) + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  canvas.addEventListener("click", function (ev) {
    var a = barAt(ev);
    if (a) window.open("logs/" + a.task + "/" + encodeURIComponent(a.id) + ".log", "_blank");
  });
  var toggle = document.querySelector(".rows");
  if (toggle) {
    toggle.hidden = false;
    toggle.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-rows") === rowsMode));
      b.addEventListener("click", function () {
        rowsMode = b.getAttribute("data-rows");
        toggle.querySelectorAll("button").forEach(function (o) {
          o.setAttribute("aria-pressed", String(o === b));
        });
        drawTimeline();
      });
    });
  }
}

function ago() {
  var el = byId("updated-ago");
  if (el && model) el.textContent = "(" + fmt(Math.max(0, Date.now() - model.now)) + " ago)";
}

function render() {
  model = readModel();
  wire();
  drawTimeline();
  drawHistogram();
  ago();
}

function live() {
  if (!model || !LIVE[model.status.phase]) return;
  if (!/^https?:$/.test(location.protocol)) {
    setTimeout(function () { location.reload(); }, 10000);
    return;
  }
  setTimeout(function () {
    fetch(location.href, { cache: "no-store" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var next = doc.getElementById("page");
      if (!next) return;
      byId("page").replaceWith(document.adoptNode(next));
      document.title = doc.title;
      document.body.setAttribute("data-phase", doc.body.getAttribute("data-phase") || "");
      render();
    }).catch(function () {}).then(live);
  }, 2000);
}

// Called last, once every part of the script has run its top level.
function start() {
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { drawTimeline(); drawHistogram(); }, 100);
  });
  setInterval(ago, 1000);
  render();
  live();
}
`;

/** The page's script, with the outcome colours filled in. */
export const PAGE_SCRIPT: string = `(function () {\nvar COLOURS = ${
  JSON.stringify(OUTCOME_COLOURS)
};${BODY}${LAYOUT_SCRIPT}${DRAW_SCRIPT}start();
})();`;
