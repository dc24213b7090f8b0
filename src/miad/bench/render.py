"""Render `Table`s as Markdown (tables.md), LaTeX with booktabs (tables.tex) or HTML fragments (report.html)."""

from __future__ import annotations

import html

from miad.bench.table_format import DASH, Table

_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_TEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", DASH: "--", "−": "-", "<=": r"$\leq$"}


def markdown_table(table: Table) -> str:
    def cell(i: int, j: int, text: str) -> str:
        return f"**{text}**" if (i, j) in table.bold else text

    lines = [f"## {table.title}", "", "| " + " | ".join(table.header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(table.header) - 1)) + "|"]
    lines += ["| " + " | ".join(cell(i, j, t) for j, t in enumerate(row)) + " |" for i, row in enumerate(table.rows)]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def markdown(tables: list[Table], title: str = "Benchmark results") -> str:
    return f"# {title}\n\n" + "\n".join(markdown_table(t) for t in tables)


def tex_escape(text: str) -> str:
    out = "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)
    for symbol, tex in _TEX_SYMBOLS.items():
        out = out.replace(symbol, tex)
    return out


def latex_table(table: Table) -> str:
    def cell(i: int, j: int, text: str) -> str:
        return rf"\textbf{{{tex_escape(text)}}}" if (i, j) in table.bold else tex_escape(text)

    spec = "l" + "r" * (len(table.header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{tex_escape(table.title)}. {tex_escape(table.note)}}}", rf"\label{{tab:{table.key}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(tex_escape(h) for h in table.header) + r" \\",
             r"\midrule"]
    lines += [" & ".join(cell(i, j, t) for j, t in enumerate(row)) + r" \\" for i, row in enumerate(table.rows)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def latex(tables: list[Table]) -> str:
    head = "% miad benchmark tables; needs \\usepackage{booktabs}\n"
    return head + "\n".join(latex_table(t) for t in tables)


def _wrappable(text: str) -> str:
    """Escaped cell text that a narrow page may wrap only where it reads well: after an underscore of a long name
    (`electrical_<wbr>insulator`) and between a mean and its "± std" (a non-breaking space keeps "± 1.2" whole)."""
    return html.escape(text).replace("_", "_<wbr>").replace(" ± ", " ±\u00a0")


def html_table(table: Table) -> str:
    def cell(i: int, j: int, text: str) -> str:
        tag = "th" if j == 0 else "td"
        inner = _wrappable(text)
        return f"<{tag}><b>{inner}</b></{tag}>" if (i, j) in table.bold else f"<{tag}>{inner}</{tag}>"

    head = _html_header(table.header)
    body = "".join("<tr>" + "".join(cell(i, j, t) for j, t in enumerate(row)) + "</tr>"
                   for i, row in enumerate(table.rows))
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (f'<h3 id="{html.escape(table.key)}">{html.escape(table.title)}</h3>'
            f'<div class="scroll"><table><thead>{head}</thead><tbody>{body}</tbody></table></div>{note}')


def _html_header(header: list[str]) -> str:
    """Header rows. Columns named "<group> <part>" in runs of the same group ("viewpoint low", "viewpoint mid",
    ...) get a two-row header (the group spanning its parts): the short parts, not the long names, then set the
    column widths, so that the 13-column factor table fits a 1400 px page without a scrollbar."""
    split = [h.rpartition(" ") for h in header[1:]]
    runs: list[list[str]] = []  # [group, part, part, ...] per run of one group
    for group, _, part in split:
        if runs and runs[-1][0] == group:
            runs[-1].append(part)
        else:
            runs.append([group, part])
    if not split or any(not g for g, _, _ in split) or any(len(run) < 3 for run in runs):
        return "<tr>" + "".join(f"<th>{_wrappable(h)}</th>" for h in header) + "</tr>"
    top = f'<th rowspan="2">{_wrappable(header[0])}</th>' + "".join(
        f'<th colspan="{len(run) - 1}" class="group">{_wrappable(run[0])}</th>' for run in runs)
    parts = "".join(f"<th>{_wrappable(part)}</th>" for run in runs for part in run[1:])
    return f"<tr>{top}</tr><tr>{parts}</tr>"
