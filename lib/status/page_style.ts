/**
 * Colours and CSS of the HTML status page. The page's script reads the same
 * colours, so the legend and the canvas agree.
 *
 * @module
 */

/** What a bar on the timeline stands for, and its colour. */
export const OUTCOME_COLOURS = {
  ok: "#2e9d4f",
  "task-error": "#d6433b",
  crash: "#ee8a1c",
  timeout: "#8d5ad9",
  cancelled: "#9aa1a9",
  disrupted: "#c9a227",
  running: "#2f80d8",
} as const;

/** A timeline bar kind. */
export type BarKind = keyof typeof OUTCOME_COLOURS;

/** Legend text of each bar kind. */
export const OUTCOME_LABELS: Record<BarKind, string> = {
  ok: "ok",
  "task-error": "task error",
  crash: "crash",
  timeout: "timeout",
  cancelled: "cancelled",
  disrupted: "disrupted",
  running: "running",
};

/** The page's style sheet. */
export const PAGE_CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2329;--muted:#66707a;--line:#dde1e6;
--panel:#f6f7f9;--grid:#e6e9ed;--code:#eef0f3}
@media (prefers-color-scheme:dark){:root{--bg:#15191e;--fg:#e4e8ec;--muted:#97a1ab;
--line:#2c333b;--panel:#1c2127;--grid:#262d35;--code:#222931}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}
main{max-width:1280px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:20px;margin:0;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
h1 .key{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-weight:600}
h2{font-size:15px;margin:28px 0 8px;display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
h2 small{font-weight:400;color:var(--muted)}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--code);
padding:1px 5px;border-radius:4px;word-break:break-all}
a{color:#2f80d8}
.phase{font-size:12px;font-weight:600;padding:2px 10px;border-radius:999px;color:#fff;
text-transform:uppercase;letter-spacing:.04em}
.phase-running,.phase-preparing{background:#2f80d8}.phase-done{background:#2e9d4f}
.phase-failed{background:#d6433b}.phase-interrupted{background:#9aa1a9}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:4px 24px;
margin:14px 0;padding:0}
.facts div{display:flex;gap:8px;min-width:0}.facts dt{color:var(--muted);flex:none}
.facts dd{margin:0;min-width:0}
.facts .clip{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.counts{display:grid;grid-template-columns:repeat(auto-fit,minmax(96px,1fr));gap:8px;margin:0;
padding:0}
.counts div{background:var(--panel);border:1px solid var(--line);border-radius:8px;
padding:8px 12px}
.counts dt{color:var(--muted);font-size:12px}.counts dd{margin:0;font-size:22px;font-weight:600;
font-variant-numeric:tabular-nums}
.counts .failed dd{color:#d6433b}.counts .done dd{color:#2e9d4f}.counts .running dd{color:#2f80d8}
.bar{display:flex;height:8px;border-radius:4px;overflow:hidden;background:var(--grid);margin:12px 0}
.bar span{display:block}
.error{color:#d6433b;background:var(--panel);border-left:3px solid #d6433b;padding:8px 12px;
white-space:pre-wrap}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted);margin:0 0 6px;
padding:0;list-style:none}
.legend i{display:inline-block;width:12px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
.legend .wait{opacity:.35}.legend .spec{outline:2px solid var(--fg);outline-offset:-2px}
.chart{position:relative;border:1px solid var(--line);border-radius:8px;padding:8px;
background:var(--panel)}
.chart canvas{display:block;width:100%}
.tip{position:absolute;pointer-events:none;background:var(--bg);border:1px solid var(--line);
border-radius:6px;padding:6px 9px;font-size:12px;box-shadow:0 2px 10px #0003;white-space:pre;
z-index:2}
.rows button{font:inherit;font-size:12px;border:1px solid var(--line);background:var(--bg);
color:var(--fg);padding:1px 9px;cursor:pointer}
.rows button:first-child{border-radius:4px 0 0 4px}.rows button:last-child{border-radius:0 4px 4px 0}
.rows button[aria-pressed=true]{background:#2f80d8;color:#fff;border-color:#2f80d8}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:var(--muted);font-weight:500;border-bottom:1px solid var(--line)}
td,th{padding:5px 10px 5px 0;vertical-align:top}
tr+tr td{border-top:1px solid var(--line)}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
td.msg{white-space:pre-wrap;word-break:break-word;max-width:520px}
.outcome{font-weight:600}
details{margin-top:4px;font-size:12px}summary{cursor:pointer;color:var(--muted)}
details code{display:inline-block;margin-top:3px}
footer{margin-top:32px;color:var(--muted);font-size:12px}
.muted{color:var(--muted)}
`;
