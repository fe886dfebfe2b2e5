"""The demo's two outputs: a narrative on the terminal and one self-contained HTML page.

The page has no external assets (inline CSS, no scripts, no fonts) so it can be mailed, put on
a projector from a USB stick, or opened years later. Each step is a row; each device is a
column holding its part of that step's wire transcript, so reading down a column is one
device's timeline and reading across a row shows what one action did everywhere.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from mailhub.demo.story import DEVICES, Line, Step

ARROWS = {"C": ">>", "S": "<<", "$": "$ ", "O": "  ", "c": ">>", "s": "<<"}
# Plain-text direction marks (not CSS): the page still reads right when copied as text.
_MARK = {"C": "C: ", "S": "S: ", "$": "$ ", "O": "  ", "c": "C: ", "s": "S: "}
_SHOWN_HEADERS = ("From:", "Subject:")


def _runs(lines: Sequence[Line]) -> list[tuple[bool, list[Line]]]:
    """Split into runs of protocol lines and runs of message content (lower-case direction)."""
    runs: list[tuple[bool, list[Line]]] = []
    for line in lines:
        content = line.direction.islower()
        if runs and runs[-1][0] == content:
            runs[-1][1].append(line)
        else:
            runs.append((content, [line]))
    return runs


def terminal(step: Step, number: int) -> str:
    """The step for a terminal: message contents folded to their From and Subject lines."""
    out = [f"\n== {number}. {step.title} ({step.seconds:.2f} s)", f"   {step.story}"]
    width = max(len(d) for d in DEVICES)
    shown = step.lines
    i = 0
    while i < len(shown):
        device, direction, text, _at = shown[i]
        if not direction.islower():
            out.append(f"   {device:<{width}} {ARROWS[direction]} {text}")
            i += 1
            continue
        j = i
        while j < len(shown) and shown[j][0] == device and shown[j][1].islower():
            j += 1
        block = shown[i:j]
        for _d, dr, tx, _at in block:
            if tx.startswith(_SHOWN_HEADERS):
                out.append(f"   {device:<{width}} {ARROWS[dr]} {tx}")
        out.append(
            f"   {device:<{width}} {ARROWS[direction]} [... the message: {len(block)} lines in all]"
        )
        i = j
    out.extend(f"   => {seen}" for seen in step.seen)
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem;color:#1d232b;
background:#f6f7f9}
h1{font-size:1.5rem;margin:0 0 .3rem}
p.lead{max-width:60rem;margin:.2rem 0 1rem}
table{border-collapse:separate;border-spacing:6px;width:100%;table-layout:fixed}
th{position:sticky;top:0;background:#1d3557;color:#fff;padding:.5rem;border-radius:4px;
font-size:.9rem}
td{vertical-align:top;background:#fff;border:1px solid #d8dde3;border-radius:4px;padding:.4rem}
td.empty{background:transparent;border:1px dashed #e1e5ea}
tr.story td{background:#eef3f8;border-color:#c9d6e3}
.story h2{font-size:1.05rem;margin:.1rem 0 .3rem}
.story .took{color:#5a6470;font-weight:normal;font-size:.85rem}
.seen{margin:.3rem 0 0;padding-left:1.2rem;color:#205c2c}
pre{margin:0;font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;
word-break:break-all}
.C{color:#0b5394}.S{color:#444}.X{color:#7a4a00}
.d{color:#9aa5b1;user-select:none}
.O{color:#444}
details{margin:0 0 0 1.5em}summary{color:#5a6470;cursor:pointer}
footer{margin-top:1rem;color:#5a6470;font-size:.85rem}
"""


def _line(line: Line) -> str:
    """One transcript line; hovering shows when it went over the wire."""
    cls = {"$": "X", "c": "C", "s": "S"}.get(line.direction, line.direction)
    return (
        f'<span class="{cls}" title="+{line.at:.3f} s"><span class="d">'
        f"{_MARK[line.direction]}</span>{html.escape(line.text)}</span>"
    )


def _cell(lines: Sequence[Line]) -> str:
    """A device's lines in one step; each message's content folds into a <details>."""
    if not lines:
        return '<td class="empty"></td>'
    parts = []
    for content, run in _runs(lines):
        body = "\n".join(_line(ln) for ln in run)
        if content:
            subject = next((ln.text for ln in run if ln.text.startswith("Subject:")), "message")
            parts.append(
                f"<details><summary>{html.escape(subject)} ({len(run)} lines)"
                f"</summary>{body}</details>"
            )
        else:
            parts.append(body + "\n")
    return "<td><pre>" + "".join(parts) + "</pre></td>"


def page(steps: Sequence[Step], where: str, total: float) -> str:
    used = [d for d in DEVICES if any(ln.device == d for s in steps for ln in s.lines)]
    head = "".join(f"<th>{html.escape(DEVICES[d])}</th>" for d in used)
    body = []
    for n, step in enumerate(steps, 1):
        seen = "".join(f"<li>{html.escape(x)}</li>" for x in step.seen)
        body.append(
            f'<tr class="story" id="step-{n}"><td colspan="{len(used)}"><h2>{n}. '
            f'{html.escape(step.title)} <span class="took">({step.seconds:.2f} s)</span></h2>'
            f"{html.escape(step.story)}"
            + (f'<ul class="seen">{seen}</ul>' if seen else "")
            + "</td></tr>"
        )
        cells = [_cell([ln for ln in step.lines if ln.device == d]) for d in used]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>mailhub demo: IMAP versus POP3</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>IMAP versus POP3, on one mailbox</h1>"
        '<p class="lead">IMAP keeps every device and the server in step: what one device '
        "does (read a message, file it in a folder) every other device sees. POP3 downloads "
        "to one device and, unless the account keeps a copy, removes the mail from the "
        "server. Each column is one device's timeline; each cell is that device's actual "
        "protocol exchange during the step (C: client, S: server; passwords replaced by "
        "asterisks; hover over a line to see when it was sent; click a message to unfold it). "
        f"Server: {html.escape(where)}.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<footer>{len(steps)} steps in {total:.1f} s, recorded by <code>mailhub demo</code>."
        "</footer></body></html>\n"
    )
