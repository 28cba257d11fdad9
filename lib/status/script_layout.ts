/**
 * Part of the status page's script: packing attempts into timeline rows,
 * one per worker slot (each attempt, by start time, takes the lowest row
 * that is free by then, so there are about as many rows as the
 * parallelism) or one per task. Sets each attempt's `row`, and `from`,
 * where its light "waiting" segment begins.
 *
 * @module
 */

/** Browser script (plain ES2017): `Heap`, `packSlots(model)`, `packTasks(model)`. */
export const LAYOUT_SCRIPT: string = String.raw`
function Heap(less) { this.a = []; this.less = less; }
Heap.prototype.size = function () { return this.a.length; };
Heap.prototype.peek = function () { return this.a[0]; };
Heap.prototype.push = function (v) {
  var a = this.a, i = a.length;
  a.push(v);
  while (i > 0) {
    var p = (i - 1) >> 1;
    if (!this.less(a[i], a[p])) break;
    var t = a[i]; a[i] = a[p]; a[p] = t; i = p;
  }
};
Heap.prototype.pop = function () {
  var a = this.a, top = a[0], last = a.pop();
  if (a.length > 0) {
    a[0] = last;
    for (var i = 0;;) {
      var l = 2 * i + 1, r = l + 1, m = i;
      if (l < a.length && this.less(a[l], a[m])) m = l;
      if (r < a.length && this.less(a[r], a[m])) m = r;
      if (m === i) break;
      var t = a[i]; a[i] = a[m]; a[m] = t; i = m;
    }
  }
  return top;
};


// One row per worker slot: attempts sorted by start take the lowest free row.
function packSlots(m) {
  var started = [], waiting = [];
  m.attempts.forEach(function (a) { (a.started ? started : waiting).push(a); });
  started.sort(function (x, y) { return x.start - y.start || x.sub - y.sub; });
  var busy = new Heap(function (p, q) { return p.end < q.end || (p.end === q.end && p.row < q.row); });
  var free = new Heap(function (p, q) { return p < q; });
  var freeAt = [], rows = [];
  started.forEach(function (a) {
    while (busy.size() > 0 && busy.peek().end <= a.start) free.push(busy.pop().row);
    var row = free.size() > 0 ? free.pop() : freeAt.length;
    a.row = row;
    a.from = Math.max(a.sub, row < freeAt.length ? freeAt[row] : a.sub);
    freeAt[row] = a.end;
    (rows[row] = rows[row] || []).push(a);
    busy.push({ end: a.end, row: row });
  });
  var labels = freeAt.map(function (_, i) { return "slot " + (i + 1); });
  if (waiting.length > 0) {
    waiting.forEach(function (a) { a.row = labels.length; a.from = a.sub; });
    rows[labels.length] = waiting;
    labels.push("waiting");
  }
  return { labels: labels, rows: rows };
}

// One row per task, in task order.
function packTasks(m) {
  var index = {}, labels = [], rows = [];
  m.attempts.forEach(function (a) {
    if (!(a.task in index)) { index[a.task] = labels.length; labels.push("task " + a.task); rows.push([]); }
    a.row = index[a.task];
    a.from = a.sub;
    rows[a.row].push(a);
  });
  return { labels: labels, rows: rows };
}

`;
