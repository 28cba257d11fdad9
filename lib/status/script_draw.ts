/**
 * Part of the status page's script: drawing the timeline and the run-time
 * histogram on their canvases, in one pass over the attempts each.
 *
 * @module
 */

/**
 * Browser script (plain ES2017): `drawTimeline()` and `drawHistogram()`,
 * which read `model` and `rowsMode` and set `hit`, `data-bars`,
 * `window.kubefaceTimeline` and `window.kubefaceHistogram`.
 */
export const DRAW_SCRIPT: string = String.raw`
function fmtTick(ms) {
  if (ms === 0) return "0";
  if (ms < 1000) return ms + "ms";
  if (ms < 60000) return +(ms / 1000).toFixed(1) + "s";
  var m = Math.round(ms / 60000);
  if (ms < 3600000) return m + "m";
  return Math.floor(m / 60) + "h" + (m % 60 ? (m % 60) + "m" : "");
}

var STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5,
  6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5];
function niceStep(span, count) {
  var raw = span / Math.max(1, count);
  for (var i = 0; i < STEPS.length; i++) if (STEPS[i] >= raw) return STEPS[i];
  return Math.ceil(raw / 864e5) * 864e5;
}

function colours() {
  var css = getComputedStyle(document.documentElement);
  var v = function (name, fallback) { return css.getPropertyValue(name).trim() || fallback; };
  return { fg: v("--fg", "#1d2329"), muted: v("--muted", "#66707a"), grid: v("--grid", "#e6e9ed") };
}

function setup(canvas, height) {
  var dpr = window.devicePixelRatio || 1;
  var width = Math.max(200, canvas.clientWidth || canvas.parentNode.clientWidth);
  canvas.style.height = height + "px";
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  var ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  return { ctx: ctx, width: width };
}

function drawTimeline() {
  var canvas = byId("timeline");
  if (!canvas || !model) return;
  var began = performance.now();
  var pack = rowsMode === "tasks" ? packTasks(model) : packSlots(model);
  var n = Math.max(1, pack.labels.length);
  var plotH = Math.min(n * MAX_ROW, MAX_PLOT);
  var rowH = plotH / n;
  var c = colours();
  var s = setup(canvas, TOP + plotH + AXIS), ctx = s.ctx;
  var plotW = s.width - GUTTER - 8;
  var span = model.t1 - model.t0, scale = plotW / span;
  var x = function (t) { return GUTTER + (t - model.t0) * scale; };

  var step = niceStep(span, Math.floor(plotW / 90));
  ctx.fillStyle = c.muted;
  ctx.textAlign = "center";
  for (var t = 0; t <= span; t += step) {
    ctx.fillStyle = c.grid;
    ctx.fillRect(Math.round(x(model.t0 + t)), TOP, 1, plotH);
    ctx.fillStyle = c.muted;
    ctx.fillText(fmtTick(t), x(model.t0 + t), TOP + plotH + AXIS / 2);
  }
  ctx.textAlign = "right";
  var every = Math.max(1, Math.ceil(14 / rowH));
  for (var r = 0; r < pack.labels.length; r += every) {
    ctx.fillText(pack.labels[r], GUTTER - 8, TOP + (r + 0.5) * rowH);
  }

  var pad = rowH >= 6 ? Math.min(3, rowH * 0.15) : 0;
  var h = Math.max(1, rowH - 2 * pad);
  var bars = 0;
  ctx.lineWidth = 1.5;
  model.attempts.forEach(function (a) {
    var y = TOP + a.row * rowH + pad;
    ctx.fillStyle = KINDS.indexOf(a.kind) >= 0 || a.kind === "running" ? COLOURS[a.kind] : COLOURS.crash;
    var waitEnd = a.started ? a.start : a.end;
    if (waitEnd > a.from) {
      ctx.globalAlpha = 0.35;
      ctx.fillRect(x(a.from), y, Math.max(1, (waitEnd - a.from) * scale), h);
    }
    ctx.globalAlpha = 1;
    if (a.started) {
      var w = (a.end - a.start) * scale;
      ctx.fillRect(x(a.start), y, Math.max(1, w > 4 ? w - 1 : w), h);
    }
    if (a.spec && h >= 4) {
      ctx.strokeStyle = c.fg;
      var from = a.started ? a.start : a.from;
      ctx.strokeRect(x(from) + 0.75, y + 0.75, Math.max(1, (a.end - from) * scale) - 1.5, h - 1.5);
    }
    bars++;
  });
  if (LIVE[model.status.phase]) {
    ctx.fillStyle = c.fg;
    ctx.fillRect(Math.round(x(model.now)), TOP, 1, plotH);
  }
  canvas.setAttribute("data-bars", String(bars));
  window.kubefaceTimeline = {
    bars: bars, rows: pack.labels.length, mode: rowsMode, drawMs: performance.now() - began,
  };
  hit = { pack: pack, x0: GUTTER, t0: model.t0, scale: scale, rowH: rowH };
}

function drawHistogram() {
  var canvas = byId("histogram");
  if (!canvas || !model) return;
  var runs = model.attempts.filter(function (a) {
    return a.started && !a.open && KINDS.indexOf(a.kind) >= 0;
  });
  var c = colours();
  var H = runs.length > 0 ? 190 : 36, left = 44, bottom = AXIS;
  var s = setup(canvas, H), ctx = s.ctx;
  canvas.setAttribute("data-attempts", String(runs.length));
  if (runs.length === 0) {
    ctx.fillStyle = c.muted;
    ctx.fillText("No attempt has finished yet.", 8, H / 2);
    window.kubefaceHistogram = { attempts: 0, bins: 0 };
    return;
  }
  var max = 0;
  runs.forEach(function (a) { max = Math.max(max, a.end - a.start); });
  var bins = Math.max(1, Math.min(40, Math.ceil(Math.sqrt(runs.length) * 1.5)));
  var width = max > 0 ? max / bins : 1;
  var counts = [], totals = [];
  for (var b = 0; b < bins; b++) { counts.push(KINDS.map(function () { return 0; })); totals.push(0); }
  runs.forEach(function (a) {
    var i = Math.min(bins - 1, Math.floor((a.end - a.start) / width));
    counts[i][KINDS.indexOf(a.kind)]++;
    totals[i]++;
  });
  var top = Math.max.apply(null, totals);
  var plotW = s.width - left - 8, plotH = H - bottom - 8;
  var bw = plotW / bins;
  ctx.fillStyle = c.muted;
  ctx.textAlign = "right";
  [0, Math.round(top / 2), top].forEach(function (v) {
    var y = 8 + plotH - (v / top) * plotH;
    ctx.fillStyle = c.grid;
    ctx.fillRect(left, Math.round(y), plotW, 1);
    ctx.fillStyle = c.muted;
    ctx.fillText(String(v), left - 6, y);
  });
  for (b = 0; b < bins; b++) {
    var y = 8 + plotH;
    for (var k = 0; k < KINDS.length; k++) {
      var hk = (counts[b][k] / top) * plotH;
      if (hk <= 0) continue;
      ctx.fillStyle = COLOURS[KINDS[k]];
      ctx.fillRect(left + b * bw + 1, y - hk, Math.max(1, bw - 2), hk);
      y -= hk;
    }
  }
  ctx.fillStyle = c.muted;
  ctx.textAlign = "center";
  var span = width * bins, step = niceStep(span, Math.floor(plotW / 80));
  for (var t = 0; t <= span + 1e-9; t += step) {
    ctx.fillText(fmtTick(t), left + (t / span) * plotW, H - bottom / 2);
  }
  window.kubefaceHistogram = { attempts: runs.length, bins: bins };
}

`;
