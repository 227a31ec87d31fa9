"""The rehearsal's report: progress line, text, HTML with SVG charts, JSON."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from causerie.rehearse import figures as f
from causerie.rehearse.report import (
    html_report,
    line_chart,
    nice_step,
    progress_line,
    summary_json,
    text_summary,
)
from tests.rehearse.test_figures import RUN


def summary() -> f.Summary:
    return f.summarize(
        RUN,
        target="http://edge<1>",
        space="abc",
        listeners=20,
        ramp=2,
        duration=3,
        requests_by_name=[("GET segment", 100, 0, 0.02, 0.2), ("POST join", 23, 3, 0.01, 0.05)],
    )


def test_text_summary_says_every_figure():
    text = text_summary(summary(), "PASSED")
    assert "joins admitted       20 (10.0/s mean, 10.0/s peak)" in text
    assert "time to first audio  p50 0.20 s, p99 0.90 s (20 visits)" in text
    assert "parts received       100, late 2 (2.00%)" in text
    assert "live events          delay after publication p50 0.020 s, p99 0.400 s" in text
    assert (
        "per listener         4.000 requests/s, everything included (40 listener-seconds)" in text
    )
    assert "errors by kind       HTTP 503: 3, ConnectionResetError: 1" in text
    assert "errors 1 (0.62%), refused politely 3" in text
    assert re.search(r"POST join\s+23\s+3\s+0.010 s\s+0.050 s", text)
    assert text.rstrip().endswith("PASSED")


def test_progress_line():
    window = f.window(RUN[1], RUN[2])
    line = progress_line(2.0, 20, 200, window, 60, 0, 1, 3)
    assert "users    20/200" in line
    assert "joins/s   10.0" in line
    assert "first audio p50 0.90 s p99 0.90 s" in line
    assert line.endswith("errors 1 (refused 3)")
    assert "first audio p50 – p99 –" in progress_line(0.5, 0, 1, None, 0, 0, 0, 0)


def test_html_report_is_self_contained_with_charts():
    windows = f.series(RUN, 1.0)
    page = html_report(summary(), windows, "FAILED: x", "causerie rehearse --target 'http://a'")
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) == 5
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
    titles = [ET.fromstring(s).get("aria-label") for s in svgs]
    assert titles[0] == "Joins admitted per second"
    assert "Errors by kind" in titles
    assert "http://edge&lt;1&gt;" in page and "edge<1>" not in page  # escaped
    assert "HTTP 503 (refused)" in page  # the legend tells refusals apart
    assert "http://" not in page.split("<body>")[0].replace("http://edge", "")  # no CDN
    assert "<script" not in page


def test_chart_scales_and_empty():
    svg = line_chart("t", [("a", [(0.0, 0.0), (10.0, 7.0)])], "u", 10.0)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    points = root.find(f"{ns}polyline").get("points").split()
    # 7 on an axis up to 8 (steps of 2): 7/8 of the plot height (170 px) above its bottom.
    assert points[-1] == f"{56 + 568:.1f},{204 - 7 / 8 * 170:.1f}"
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert labels[1:6] == ["0", "2", "4", "6", "8"]
    assert "nothing recorded" in line_chart("t", [("a", [])], "u", 10.0)


def test_json_has_the_series():
    windows = f.series(RUN, 1.0)
    data = json.loads(summary_json(summary(), windows, "PASSED", True))
    assert data["joins_admitted"] == 20 and data["ok"] is True
    assert data["errors"] == {"HTTP 503": 3, "ConnectionResetError": 1}
    assert data["refused"] == 3 and data["hard_errors"] == 1
    assert [w["joins_per_second"] for w in data["series"]] == [10, 10, 0]
    assert data["requests_by_name"][1]["failures"] == 3
    assert data["requests_per_listener_second"] == 4.0 and data["listener_seconds"] == 40


def test_nice_steps():
    assert nice_step(7.0) == 2.0  # 0, 2, 4, 6, 8
    assert nice_step(10.0) == 2.5
    assert nice_step(2.1) == 1.0
    assert nice_step(61.0, 6) == 20.0 and nice_step(60.0, 6) == 10.0
    assert nice_step(0.0) == 0.25
    assert nice_step(0.33) == 0.1
