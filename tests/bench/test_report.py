"""report.html is one self-contained offline page: nothing it shows or uses lives outside the file."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action", "poster", "background"):
                self.refs.append((tag, name, value or ""))


def _parse(html_text: str) -> _Refs:
    parser = _Refs()
    parser.feed(html_text)
    return parser


def test_report_references_nothing_outside_itself(bench_run) -> None:
    text = (bench_run.out / "report.html").read_text(encoding="utf-8")
    parsed = _parse(text)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|file:", text, re.IGNORECASE)
    assert not {"script", "link", "iframe", "object", "embed"} & set(parsed.tags)
    assert not re.search(r"url\(|@import", text)  # no CSS fetches either
    srcs = [v for tag, name, v in parsed.refs if name == "src"]
    assert [n for _, n, _ in parsed.refs] == ["src"] * len(srcs)  # no href/srcset/... at all
    assert len(srcs) == 2  # Figure A.1 and the factor figure
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_shows_every_table_and_explains_the_metrics(bench_run) -> None:
    text = (bench_run.out / "report.html").read_text(encoding="utf-8")
    for anchor in ("image_auroc", "pixel_auroc", "aupro", "defect_image_auroc", "groups", "factors", "cost"):
        assert f'id="{anchor}"' in text
    for term in ("What the metrics mean", "Figure A.1", "per-region-overlap", "ref_ae", "ref_mean"):
        assert term in text


def test_self_containment_check_catches_an_external_reference() -> None:
    parsed = _parse('<p><img src="https://example.org/a.png"><a href="x.html">x</a></p>')
    assert parsed.refs == [("img", "src", "https://example.org/a.png"), ("a", "href", "x.html")]


def test_factor_findings_appear_once_and_fresh_runs_show_no_resume(bench_run) -> None:
    text = (bench_run.out / "report.html").read_text(encoding="utf-8")
    sentences = re.findall(r"As (\w+) grows from its low to its high tercile", text)
    assert sentences and len(sentences) == len(set(sentences))  # each factor's sentence once (it was twice)
    runs = text.split("<h3>Runs</h3>", 1)[1].split("</table>", 1)[0]
    resumed = re.findall(r"<td>([^<]*)</td></tr>", runs)  # the last cell of each run row
    assert resumed and set(resumed) == {"–"}  # never-resumed runs: no "Resumed after epoch 0"


def test_a_resumed_run_shows_its_epoch() -> None:
    from miad.bench.report import build_report

    result = {"method": "ref_ae", "setting": "per-category", "seed": 0, "trained_on": ["widget"], "fit_seconds": 1.0,
              "inference_ms_per_image": 2.0, "metrics": {}}
    page = build_report([], [{**result, "resumed_after_epoch": 3}, {**result, "seed": 1}], {}, None, None)
    assert re.findall(r"<td>([^<]*)</td></tr>", page.split("<h3>Runs</h3>", 1)[1]) == ["3", "–"]
