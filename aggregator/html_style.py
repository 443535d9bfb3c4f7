"""The HTML report's style sheet, inlined into the one file (no network)."""

from __future__ import annotations

__all__ = ["CSS"]

CSS = """
:root { --ink:#202124; --muted:#5f6368; --line:#dadce0; --soft:#f6f8fa; --good:#188038;
  --bad:#d93025; --neutral:#5f6368; --ref:#8a94a6; --other:#e8710a; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color:var(--ink); background:#fff; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 40px 0 12px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
.meta, .note, figcaption { color: var(--muted); font-size: 13px; }
.verdict { border-radius: 10px; padding: 18px 22px; margin: 20px 0; border-left: 8px solid;
  background: var(--soft); }
.verdict.better { border-color: var(--good); background: #e6f4ea; }
.verdict.worse { border-color: var(--bad); background: #fce8e6; }
.verdict.unclear, .verdict.empty { border-color: var(--neutral); }
.verdict .headline { font-size: 22px; font-weight: 700; }
.verdict .detail { margin-top: 6px; font-size: 14px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 14px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px;
  min-width: 150px; }
.tile .k { font-size: 12px; color: var(--muted); }
.tile .v { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .s { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0 4px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: right; }
td { white-space: nowrap; } td.text { white-space: normal; }
.ci { color: var(--muted); font-size: 12px; }
.wide { overflow-x: auto; }
th { background: var(--soft); font-weight: 600; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
tr.overall td { font-weight: 700; }
.pos { color: var(--good); } .neg { color: var(--bad); }
figure { margin: 16px 0; }
figure svg { width: 100%; height: auto; display: block; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
@media (max-width: 800px) { .columns { grid-template-columns: 1fr; } }
.change { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin: 10px 0; }
.change .where { font-size: 12px; color: var(--muted); }
.change .q { font-weight: 600; margin: 2px 0 6px; white-space: pre-wrap; }
.change .ans { display: grid; grid-template-columns: 110px 1fr 80px; gap: 8px; font-size: 14px;
  padding: 2px 0; }
.change .who { color: var(--muted); overflow-wrap: anywhere; }
.change .said { white-space: pre-wrap; overflow-wrap: anywhere; }
.change .f1 { text-align: right; font-variant-numeric: tabular-nums; }
.change .gold { font-size: 14px; margin-top: 4px; }
.change blockquote { margin: 8px 0 2px; padding: 6px 10px; background: var(--soft);
  border-left: 3px solid var(--line); font-size: 13px; color: #3c4043; white-space: pre-wrap; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px;
  background: var(--soft); border: 1px solid var(--line); }
.warning { border-left: 6px solid #f9ab00; background: #fef7e0; padding: 10px 14px;
  border-radius: 6px; font-weight: 600; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px; }
"""
