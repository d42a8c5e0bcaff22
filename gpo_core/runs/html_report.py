"""One self-contained HTML report per run (issue 13, item 4): the Markdown report's content
as HTML plus the accuracy and dev-test gap charts, with plotly.js embedded (about 4.6 MB with the
installed plotly, :func:`plotly_js_bytes`; no CDN, opens offline).

Source: plotly ``Figure.to_html(include_plotlyjs=True, full_html=False)``; the Markdown is
:func:`gpo_core.runs.exports.export_markdown`, converted here for the subset it uses
(headings, lists, tables, fenced code, paragraphs). User text arrives escaped by
:func:`gpo_core.runs.exports.md_text` and is escaped again for HTML, so it shows as text.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.exports import export_markdown


@lru_cache(maxsize=1)
def plotly_js_bytes() -> int:
    """How many bytes the embedded plotly.js adds to each HTML report (the installed
    plotly's bundle: about 4.6 MB with plotly 6-7)."""
    from plotly.offline import get_plotlyjs

    return len(get_plotlyjs().encode("utf-8"))

_UNESCAPE_MD = re.compile(r"\\([\\`*_\[\]|~#])")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    """One Markdown line (already Markdown/HTML-escaped user text) as safe HTML text."""
    parts = _CODE.split(text)
    out = []
    for i, part in enumerate(parts):
        plain = html.escape(html.unescape(_UNESCAPE_MD.sub(r"\1", part)), quote=False)
        out.append(f"<code>{plain}</code>" if i % 2 else plain)
    return "".join(out)


def markdown_to_html(md: str) -> str:
    """The report's Markdown (the subset :func:`export_markdown` writes) as an HTML fragment."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:j]), quote=False) + "</code></pre>")
            i = j + 1
            continue
        m = re.match(r"(#{1,6}) (.*)", line)
        if m:
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in _CELL_SPLIT.split(lines[i].strip())[1:-1]])
                i += 1
            head, body = rows[0], [r for r in rows[1:] if not all(set(c) <= set("-:") for c in r)]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
            continue
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
pre{background:#f5f5f5;padding:1em;white-space:pre-wrap}.chart{margin:1em 0}"""


def export_html(session: GPOSession) -> str:
    """The run's report as one self-contained HTML page (text): the Markdown report's
    content, then the accuracy curve and the dev-test gap chart (``div.chart`` with ids
    ``accuracy-chart`` / ``gap-chart``) and, for label tasks, the final prompt's confusion
    heatmaps (``confusion-chart-dev`` / ``-test``), plotly.js inlined once (:func:`plotly_js_bytes`, no network)."""
    from gpo_core.runs.report_classes import final_class_reports
    from gpo_core.studio.charts import accuracy_figure, gap_figure
    from gpo_core.studio.views.class_report_view import matrix_figure

    s = session.state
    body = markdown_to_html(export_markdown(session))
    acc = accuracy_figure(s).to_html(full_html=False, include_plotlyjs=True, div_id="accuracy-plot",
                                     config={"displaylogo": False})
    gap = gap_figure(s).to_html(full_html=False, include_plotlyjs=False, div_id="gap-plot",
                                config={"displaylogo": False})
    charts = ('<h2>Charts</h2><p>Dev and test accuracy per step with 95% Wilson intervals; the dev-test gap with its '
              'interval. Charts are interactive and work offline (plotly.js is embedded).</p>'
              f'<div class="chart" id="accuracy-chart">{acc}</div><div class="chart" id="gap-chart">{gap}</div>')
    for split, report, _ in final_class_reports(session):  # label tasks: the final prompt's confusion matrices
        fig = matrix_figure(report).update_layout(title=f"Confusion matrix of the final prompt on {split} "
                                                        "(rows: gold, columns: answer)")
        heat = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"confusion-plot-{split}",
                           config={"displaylogo": False})
        charts += f'<div class="chart" id="confusion-chart-{split}">{heat}</div>'

    title = html.escape(f"GPO Studio report: {s.task.name} ({s.run_id})")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; script-src \'unsafe-inline\' '
            f'\'unsafe-eval\'; style-src \'unsafe-inline\'; img-src data:; font-src data:">'
            f'<style>{_STYLE}</style></head><body>\n{body}\n{charts}\n</body></html>\n')
