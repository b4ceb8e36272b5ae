r"""``report.html``: one self-contained page with the summary, a sortable task table and a viewer.

The page must open anywhere (a laptop, a CI artifact, an air-gapped box), so
it has no external assets: CSS and JS are inline, and the data is one JSON
document embedded in a ``<script type="application/json">`` block. For 164
tasks x 8 samples the viewer cannot be rendered up front, so the JS builds a
task's trajectories only when the task is clicked, and a trajectory's turns
only when it is opened.

Everything the model or the sandbox wrote is untrusted: in the JSON block
``<``, ``>`` and ``&`` are written as ``\u003c`` escapes (so ``</script>`` in
model output cannot end the block), and the JS inserts text with DOM text
nodes only, never ``innerHTML``, so HTML in a transcript is shown, not run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from toolgym.eval.metrics import EvalSummary
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.tools.parsing import NATIVE, try_parse_action, visible_text

MAX_TEXT = 20_000
"""Characters of one message kept in the page; the JSONL file keeps everything."""
_CALL_TAGS = re.compile(r"<tool_call>.*?(?:</tool_call>|\Z)", re.S)
_THOUGHTS = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.S)
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def write_report(path: str | Path, summary: EvalSummary,
                 trajectories: Iterable[Trajectory]) -> Path:
    """Render the report and write it to ``path`` (via a temporary file and a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_report(summary, trajectories), encoding="utf-8")
    tmp.replace(path)
    return path


def render_report(summary: EvalSummary, trajectories: Iterable[Trajectory]) -> str:
    """The whole HTML page of an evaluation."""
    blob = json.dumps(report_data(summary, trajectories), ensure_ascii=False,
                      separators=(",", ":")).translate(_JSON_ESCAPES)
    return _PAGE.replace("/*CSS*/", _CSS).replace("/*JS*/", _JS).replace("/*DATA*/", blob)


def report_data(summary: EvalSummary, trajectories: Iterable[Trajectory]) -> dict[str, Any]:
    """What the page's JS reads: the summary, and per task its trajectories, text only."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for t in trajectories:
        by_task.setdefault(t.task_id, []).append({
            "s": t.info.get("sample", t.seed),
            "o": t.outcome or "unknown",
            "r": t.final_reward,
            "w": t.timings.get("wall_s"),
            "k": t.num_action_tokens if t.turns and t.turns[0].action_ids is not None else None,
            "e": _cap(str(t.info["error"])) if t.info.get("error") else None,
            "turns": [_turn(u) for u in t.turns],
        })
    return {"summary": summary.to_json(), "trajectories": by_task}


def _turn(turn: Turn) -> dict[str, Any]:
    """One turn for the viewer: the message, its tool calls (native or read out of the
    text, by the parser the env used), its reasoning, what came back."""
    native = turn.info.get("tool_calls")
    action = {"content": turn.action_text, "tool_calls": native} if native else turn.action_text
    parsed = try_parse_action(action)
    calls = [{"name": c.name, "arguments": {k: _cap(v) if isinstance(v, str) else v
                                            for k, v in c.arguments.items()}}
             for c in parsed.calls]
    view = {"a": _cap(turn.action_text), "c": calls, "perr": parsed.observation,
            "o": _cap(turn.observation), "r": turn.reward, "f": turn.finish_reason}
    said = visible_text(turn.action_text)
    if parsed.form == NATIVE:
        view["n"] = True
        view["p"] = _cap(said.strip())
    elif calls or said != turn.action_text:  # calls and reasoning shown apart from the prose
        view["p"] = _cap(_CALL_TAGS.sub("", said).strip())
    inline = [t.strip() for t in _THOUGHTS.findall(turn.action_text)]
    reasoning = "\n".join([str(turn.info.get("reasoning") or ""), *inline]).strip()
    if reasoning:
        view["t"] = _cap(reasoning)
    return view


def _cap(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return (text[:MAX_TEXT] + f"\n… [{len(text) - MAX_TEXT} more characters left out of the "
            "report; trajectories.jsonl has them all]")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>toolgym eval report</title>
<style>/*CSS*/</style>
</head>
<body>
<header>
  <h1>toolgym eval · <span id="env"></span></h1>
  <p class="meta" id="meta"></p>
  <div class="cards"><span id="pass-cards"></span><span id="outcome-cards"></span>
    <span id="run-cards"></span></div>
</header>
<main>
  <section id="tasks">
    <input id="filter" type="search" placeholder="Filter task ids…" aria-label="Filter task ids">
    <div class="table-wrap">
      <table id="task-table"><thead><tr></tr></thead><tbody></tbody></table>
    </div>
  </section>
  <section id="viewer" aria-live="polite">
    <p class="hint">Click a task to see its trajectories.</p>
  </section>
</main>
<script type="application/json" id="eval-data">/*DATA*/</script>
<script>/*JS*/</script>
</body>
</html>
"""

_CSS = """
:root { --bg:#f7f7f8; --fg:#1d1d1f; --muted:#6b6b73; --line:#dcdce0; --card:#fff;
  --success:#1a7f37; --failure:#cf222e; --truncated:#9a6700; --agent_error:#8250df;
  --infra_error:#57606a; --sel:#ddf4ff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; color:var(--fg);
  background:var(--bg); }
header { padding:14px 20px 8px; border-bottom:1px solid var(--line); background:var(--card); }
h1 { font-size:19px; margin:0 0 2px; } h2 { font-size:16px; margin:0 0 6px; word-break:break-all; }
.meta { color:var(--muted); margin:0 0 8px; }
.cards, .cards > span { display:flex; flex-wrap:wrap; gap:8px; }
.cards { column-gap:22px; margin-bottom:6px; }
.card { border:1px solid var(--line); border-radius:6px; padding:4px 10px; background:var(--bg);
  min-width:92px; }
.card .v { font-size:18px; font-weight:600; } .card .l { color:var(--muted); font-size:12px; }
.card.pass .v { color:#0550ae; }
main { display:grid; grid-template-columns:minmax(560px, 46%) 1fr; gap:16px; padding:12px 20px;
  height:calc(100vh - var(--header-h, 170px)); min-height:420px; }
@media (max-width: 960px) { main { grid-template-columns:1fr; height:auto; } }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; min-height:0; }
#tasks { display:flex; flex-direction:column; }
#filter { margin:8px; padding:5px 8px; border:1px solid var(--line); border-radius:5px;
  font:inherit; }
.table-wrap { overflow:auto; flex:1; min-height:0; }
table { border-collapse:collapse; width:100%; }
th, td { padding:4px 7px; text-align:left; border-bottom:1px solid var(--line);
  white-space:nowrap; }
td.num, th.num { text-align:right; }
th { position:sticky; top:0; background:#eef0f3; cursor:pointer; user-select:none; z-index:1; }
th:hover { background:#e2e5ea; }
th[aria-sort="ascending"]::after { content:" ▲"; font-size:10px; }
th[aria-sort="descending"]::after { content:" ▼"; font-size:10px; }
tbody tr { cursor:pointer; } tbody tr:hover { background:#f3f4f6; }
tbody tr.selected { background:var(--sel); }
.badge { display:inline-block; border-radius:10px; padding:0 7px; margin-right:3px; font-size:12px;
  color:#fff; background:var(--infra_error); }
.o-success { background:var(--success); } .o-failure { background:var(--failure); }
.o-truncated { background:var(--truncated); } .o-agent_error { background:var(--agent_error); }
.card.o-success, .card.o-failure, .card.o-truncated, .card.o-agent_error, .card.o-infra_error {
  background:var(--bg); border-left:4px solid; }
.card.o-success { border-left-color:var(--success); }
.card.o-failure { border-left-color:var(--failure); }
.card.o-truncated { border-left-color:var(--truncated); }
.card.o-agent_error { border-left-color:var(--agent_error); }
.card.o-infra_error { border-left-color:var(--infra_error); }
#viewer { overflow:auto; padding:12px 14px; }
.hint { color:var(--muted); }
details.traj { border:1px solid var(--line); border-radius:6px; margin:0 0 10px; }
details.traj > summary { padding:6px 10px; cursor:pointer; background:#f3f4f6; border-radius:6px; }
details.traj[open] > summary { border-bottom:1px solid var(--line); border-radius:6px 6px 0 0; }
.turn { padding:8px 10px; border-bottom:1px dashed var(--line); }
.turn-head { font-weight:600; margin-bottom:4px; }
.turn-head .r { font-weight:400; color:var(--muted); margin-left:8px; }
.label { font-size:11px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted);
  margin:6px 0 2px; }
pre { margin:0; padding:6px 8px; background:#f6f8fa; border:1px solid #e5e7eb; border-radius:4px;
  white-space:pre-wrap; word-break:break-word; max-height:420px; overflow:auto;
  font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
pre.observation { background:#fffbea; border-color:#f0e2b6; }
.call { border-left:3px solid #0969da; padding-left:8px; margin:2px 0; }
.call .tool-name { font-weight:600; color:#0969da; }
.call .arg-name { color:var(--muted); font-size:12px; }
.call.error { border-left-color:var(--failure); color:var(--failure); }
.none { color:var(--muted); font-style:italic; }
details.raw > summary { color:var(--muted); font-size:12px; cursor:pointer; margin-top:2px; }
.final { padding:8px 10px; background:#f3f4f6; border-radius:0 0 6px 6px; }
.final .err { color:var(--failure); white-space:pre-wrap; } summary .err { color:var(--failure); }
"""

_JS = r"""
(() => {
"use strict";
const DATA = JSON.parse(document.getElementById("eval-data").textContent);
const S = DATA.summary, TRAJ = DATA.trajectories;
const ORDER = ["success", "failure", "truncated", "agent_error", "infra_error"];
const $ = (sel) => document.querySelector(sel);

// Every piece of data goes in as a text node (append / textContent): never parsed as HTML.
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}
const pct = (x) => (x === null || x === undefined) ? "–" : (100 * x).toFixed(1) + "%";
const fix = (x, d) => (x === null || x === undefined) ? "–" : Number(x).toFixed(d);
const badge = (o, n) => el("span", {class: "badge o-" + o}, n === undefined ? o : o + " " + n);
// The table's badges are short, so a row stays one line high; the full name is the tooltip.
const SHORT = {success: "pass", failure: "fail", truncated: "trunc", agent_error: "agent err",
               infra_error: "infra"};
const chip = (o, n) => el("span", {class: "badge o-" + o, title: o + ": " + n},
                          (SHORT[o] || o) + " " + n);
const card = (label, value, cls, sub) => el("div", {class: "card " + (cls || "")},
  el("div", {class: "v"}, String(value)),
  el("div", {class: "l"}, label + (sub ? " · " + sub : "")));

function header() {
  document.title = "toolgym eval · " + S.env_id + " · " + S.agent;
  $("#env").textContent = S.env_id;
  const x = S.extra || {};
  $("#meta").textContent = "agent " + S.agent + " · " + S.tasks.length + " tasks × " + S.samples +
    " samples · " + S.episodes + " episodes" + (x.split ? " · split " + x.split : "") +
    (S.complete ? "" : " · INCOMPLETE (re-run the same command to resume)");
  for (const [k, v] of Object.entries(S.pass_at_k))
    $("#pass-cards").append(card("pass@" + k, pct(v), "pass", S.pass_at_k_tasks[k] + " tasks"));
  const names = ORDER.concat(Object.keys(S.outcomes).filter((o) => !ORDER.includes(o)));
  for (const o of names)
    if (o in S.outcomes) $("#outcome-cards").append(card(o.replace("_", " "), S.outcomes[o],
      "o-" + o, o === "infra_error" ? "not scored" : null));
  const t = S.tokens, tm = S.timing;
  $("#run-cards").append(
    card("action tokens", t.episodes_with_ids ? t.action_tokens : "–", "",
         t.episodes_with_ids ? fix(t.mean_action_tokens, 0) + " / episode" : "no ids reported"),
    card("episode time", fix(tm.episode_s_mean, 2) + " s", "", "mean"),
    card("model / env", fix(tm.model_s_total, 0) + " / " + fix(tm.env_s_total, 0) + " s", "",
         "total"),
    card("last run", x.run_wall_s === undefined ? "–" : fix(x.run_wall_s, 1) + " s", "",
         (x.run_episodes || 0) + " new episodes"));
  document.documentElement.style.setProperty("--header-h", ($("header").offsetHeight + 2) + "px");
}

function dominant(r) {
  let best = null;
  for (const [o, n] of Object.entries(r.outcomes))
    if (best === null || n > r.outcomes[best]) best = o;
  return best === null ? "" : best;
}
const COLS = [
  {key: "task", label: "Task", get: (r) => r.task_id, show: (r) => r.task_id},
  {key: "samples", label: "Samples", title: "scored samples (infra errors left out)", num: true,
   get: (r) => r.samples, show: (r) => String(r.samples)},
  {key: "successes", label: "Solved", title: "samples that succeeded", num: true,
   get: (r) => r.successes, show: (r) => String(r.successes)},
  {key: "pass1", label: "pass@1", num: true, get: (r) => r.pass_at["1"] ?? null,
   show: (r) => pct(r.pass_at["1"])},
  {key: "turns", label: "Turns", title: "mean turns of the scored samples", num: true,
   get: (r) => r.mean_turns, show: (r) => fix(r.mean_turns, 1)},
  {key: "outcome", label: "Outcome", get: dominant, show: (r) => el("span", null,
    ...ORDER.concat(Object.keys(r.outcomes).filter((o) => !ORDER.includes(o)))
      .filter((o) => r.outcomes[o]).map((o) => chip(o, r.outcomes[o])))},
];
const collator = new Intl.Collator(undefined, {numeric: true});
let rows = [], sortCol = null, sortDir = 1;

function table() {
  const head = $("#task-table thead tr");
  for (const c of COLS)
    head.append(el("th", {class: c.num ? "num" : "", "data-key": c.key, scope: "col",
                          title: "sort by " + (c.title || c.label), onclick: () => sortBy(c)},
                   c.label));
  rows = S.tasks.map((r) => {
    const tr = el("tr", {"data-task": r.task_id, tabindex: "0",
                         onclick: () => openTask(r.task_id),
                         onkeydown: (ev) => { if (ev.key === "Enter") openTask(r.task_id); }},
      ...COLS.map((c) => el("td", {class: c.num ? "num" : c.key}, c.show(r))));
    return {r, tr};
  });
  $("#task-table tbody").append(...rows.map((x) => x.tr));
  $("#filter").addEventListener("input", (ev) => {
    const q = ev.target.value.toLowerCase();
    for (const x of rows) x.tr.hidden = q !== "" && !x.r.task_id.toLowerCase().includes(q);
  });
}

function sortBy(col) {
  sortDir = sortCol === col ? -sortDir : (col.num ? -1 : 1);
  sortCol = col;
  const cmp = (a, b) => {
    const x = col.get(a.r), y = col.get(b.r);
    const blankX = x === null || x === undefined, blankY = y === null || y === undefined;
    if (blankX || blankY) return blankX - blankY;  // blanks last, whatever the direction
    return sortDir * (col.num ? x - y : collator.compare(x, y));
  };
  rows.sort(cmp);
  $("#task-table tbody").append(...rows.map((x) => x.tr));
  for (const th of document.querySelectorAll("#task-table th"))
    if (th.dataset.key === col.key)
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
}

function openTask(id) {
  for (const x of rows) {
    x.tr.classList.toggle("selected", x.r.task_id === id);
    if (x.r.task_id === id) x.tr.scrollIntoView({block: "nearest"});
  }
  const row = S.tasks.find((r) => r.task_id === id);
  const trajs = (TRAJ[id] || []).slice().sort((a, b) => a.s - b.s);
  const viewer = $("#viewer");
  viewer.replaceChildren(el("h2", null, id));
  if (row) viewer.append(el("p", {class: "meta"}, row.successes + " of " + row.samples +
    " scored samples succeeded · pass@1 " + pct(row.pass_at["1"]) +
    (row.infra_errors ? " · infra errors (not scored): " + row.infra_errors : "")));
  if (!trajs.length) viewer.append(el("p", {class: "hint"}, "No finished trajectories."));
  trajs.forEach((t, i) => viewer.append(trajectory(t, i === 0)));
  viewer.scrollTop = 0;
  if (window.matchMedia("(max-width: 960px)").matches) viewer.scrollIntoView();  // stacked
  if (decodeURIComponent(location.hash.slice(6)) !== id)
    history.replaceState(null, "", "#task=" + encodeURIComponent(id));
}

function trajectory(t, open) {
  const d = el("details", {class: "traj", "data-sample": String(t.s)},
    el("summary", null, "sample " + t.s + " ", badge(t.o), " reward " + fix(t.r, 2) + " · " +
      t.turns.length + " turn" + (t.turns.length === 1 ? "" : "s") +
      (t.w !== null && t.w !== undefined ? " · " + fix(t.w, 1) + " s" : "") +
      (t.k !== null && t.k !== undefined ? " · " + t.k + " tokens" : ""),
      t.e ? el("span", {class: "err"}, " · " + (t.e.length > 140 ? t.e.slice(0, 140) + "…" : t.e))
          : null));
  let filled = false;
  const fill = () => {
    if (filled) return;
    filled = true;
    t.turns.forEach((u, i) => d.append(turn(u, i)));
    d.append(el("div", {class: "final"}, "Final reward ", el("strong", null, fix(t.r, 2)),
      " · outcome ", badge(t.o), t.e ? el("div", {class: "err"}, "error: " + t.e) : null));
  };
  d.addEventListener("toggle", () => { if (d.open) fill(); });
  if (open) { fill(); d.open = true; }
  return d;
}

function turn(u, i) {
  const final = !u.c.length && !u.perr;
  const box = el("div", {class: "turn"},
    el("div", {class: "turn-head"}, "Turn " + (i + 1),
       el("span", {class: "r"},
          "reward " + fix(u.r, 2) + (u.f !== "stop" ? " · finish " + u.f : ""))),
    el("div", {class: "label"}, final ? "Assistant (final answer)" : "Assistant"));
  if (u.t) box.append(el("details", {class: "reasoning"}, el("summary", null, "reasoning"),
                         el("pre", null, u.t)));
  if (u.p === undefined) box.append(el("pre", {class: "assistant"}, u.a));
  else {  // prose and calls shown apart; the raw message on demand
    if (u.p) box.append(el("pre", {class: "assistant"}, u.p));
    const raw = el("details", {class: "raw"}, el("summary", null, "raw message"));
    raw.addEventListener("toggle", () => {
      if (raw.open && raw.childElementCount === 1) raw.append(el("pre", null, u.a));
    }, {once: false});
    box.append(raw);
  }
  if (u.perr) box.append(el("div", {class: "label"}, "Tool call"),
                         el("div", {class: "call error"}, "could not be read: " + u.perr));
  else if (u.c.length) box.append(
    el("div", {class: "label"}, "Tool call" + (u.c.length > 1 ? "s" : "") +
       (u.n ? " (native tool_calls)" : "")),
    ...u.c.map((c) => el("div", {class: "call"}, el("span", {class: "tool-name"}, c.name),
      ...Object.entries(c.arguments).map(([k, v]) => el("div", {class: "arg"},
        el("span", {class: "arg-name"}, k), el("pre", null,
          typeof v === "string" ? v : JSON.stringify(v, null, 2)))))));
  box.append(el("div", {class: "label"}, "Observation"),
    u.o ? el("pre", {class: "observation"}, u.o)
        : el("div", {class: "none"},
             final ? "(none: the answer went to the verifier)" : "(empty)"));
  return box;
}

header();
table();
const fromHash = () => {
  if (location.hash.startsWith("#task=")) {
    const id = decodeURIComponent(location.hash.slice(6));
    if (S.tasks.some((r) => r.task_id === id)) openTask(id);
  }
};
window.addEventListener("hashchange", fromHash);
fromHash();
})();
"""
