"""The rehearsal's report: a progress line, a text summary, an HTML page with SVG charts, JSON.

The charts are plain inline SVG written here: the report is one self-contained file that opens
anywhere, with nothing fetched from a CDN.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict

from .figures import REFUSAL_KINDS, Summary, Window

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")


def _s(seconds: float | None, digits: int = 2) -> str:
    return "–" if seconds is None else f"{seconds:.{digits}f} s"


def progress_line(
    elapsed: float,
    users: int,
    target_users: int,
    recent: Window | None,
    total_parts: int,
    total_late: int,
    errors: int,
    refused: int,
) -> str:
    """One line of progress: the last few seconds (joins/s, first audio) and the totals."""
    joins = f"{recent.joins_per_second:6.1f}" if recent else "   0.0"
    p50 = _s(recent.ttfa_p50) if recent else "–"
    p99 = _s(recent.ttfa_p99) if recent else "–"
    return (
        f"[{elapsed:6.1f} s] users {users:>5}/{target_users:<5} joins/s {joins}  "
        f"first audio p50 {p50} p99 {p99}  parts {total_parts} late {total_late}  "
        f"errors {errors} (refused {refused})"
    )


def text_summary(summary: Summary, verdict: str) -> str:
    """The summary printed at the end."""
    s = summary
    lines = [
        f"causerie rehearsal of {s.target}" + (f" (space {s.space})" if s.space else ""),
        f"  listeners            {s.listeners} (ramp {s.ramp:g} s, ran {s.elapsed:.1f} s, "
        f"peak {s.peak_users} users)",
        f"  joins admitted       {s.joins_admitted} ({s.joins_per_second_mean:.1f}/s mean, "
        f"{s.joins_per_second_peak:.1f}/s peak)",
        f"  time to first audio  p50 {_s(s.ttfa_p50)}, p99 {_s(s.ttfa_p99)} "
        f"({s.ttfa_count} visits)",
        f"  parts received       {s.parts}, late {s.parts_late} ({s.late_ratio:.2%}); "
        f"delay after the audio's end p50 {_s(s.part_delay_p50, 3)}, "
        f"p99 {_s(s.part_delay_p99, 3)}",
        f"  live events          delay after publication p50 {_s(s.event_delay_p50, 3)}, "
        f"p99 {_s(s.event_delay_p99, 3)}",
        f"  waits                {s.waits_in_line} in line (waiting room), "
        f"{s.retries} retries after a refusal or failure (waited p50 {_s(s.retry_wait_p50)}, "
        f"min {_s(s.retry_wait_min)})",
        f"  requests             {s.requests}; errors {s.hard_errors} "
        f"({s.hard_error_ratio:.2%}), refused politely {s.refused}",
        f"  per listener         {s.requests_per_listener_second:.3f} requests/s, "
        f"everything included ({s.listener_seconds:.0f} listener-seconds)",
    ]
    if s.errors:
        lines.append(
            "  errors by kind       " + ", ".join(f"{k}: {n}" for k, n in s.errors.items())
        )
    if s.requests_by_name:
        lines.append("")
        lines.append(f"  {'request':<28}{'count':>8}{'failed':>8}{'p50':>10}{'p99':>10}")
        for name, count, failed, p50, p99 in s.requests_by_name:
            lines.append(f"  {name:<28}{count:>8}{failed:>8}{_s(p50, 3):>10}{_s(p99, 3):>10}")
    lines.append("")
    lines.append(verdict)
    return "\n".join(lines) + "\n"


def summary_json(summary: Summary, windows: Sequence[Window], verdict: str, ok: bool) -> str:
    """Everything, machine-readable."""
    data = asdict(summary)
    data["requests_by_name"] = [
        {"name": n, "requests": c, "failures": f, "p50": p50, "p99": p99}
        for n, c, f, p50, p99 in summary.requests_by_name
    ]
    data.update(
        refused=summary.refused,
        hard_errors=summary.hard_errors,
        hard_error_ratio=summary.hard_error_ratio,
        requests_per_listener_second=summary.requests_per_listener_second,
        verdict=verdict,
        ok=ok,
        series=[
            {
                "start": w.start,
                "end": w.end,
                "users": w.users,
                "joins_per_second": w.joins_per_second,
                "ttfa_p50": w.ttfa_p50,
                "ttfa_p99": w.ttfa_p99,
                "parts": w.parts,
                "parts_late": w.parts_late,
                "errors": dict(w.errors),
            }
            for w in windows
        ],
    )
    return json.dumps(data, indent=2) + "\n"


# -- charts -----------------------------------------------------------------------------------

Point = tuple[float, float]


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that covers `span` in `ticks` steps."""
    if span <= 0:
        return 1.0 / ticks
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw - 1e-12:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[Point]]],
    y_label: str,
    x_max: float,
    *,
    bars: bool = False,
    width: int = 640,
    height: int = 240,
) -> str:
    """An SVG chart: lines (or bars) of (seconds, value) points, one colour per series."""
    left, right, top, bottom = 56, 16, 34, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [y for _, points in series for _, y in points]
    y_step = nice_step(max(values, default=0.0))
    y_ticks = max(1, math.ceil(max(values, default=0.0) / y_step - 1e-9))
    y_max = y_step * y_ticks
    x_max = x_max if x_max > 0 else 1.0
    x_step = nice_step(x_max, 6)

    def px(x: float) -> float:
        return left + plot_w * min(max(x, 0.0), x_max) / x_max

    def py(y: float) -> float:
        return top + plot_h * (1 - min(max(y, 0.0), y_max) / y_max)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i in range(y_ticks + 1):  # horizontal grid and y ticks
        y_value = y_step * i
        y = py(y_value)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{_fmt(y_value)}</text>"
        )
    for i in range(math.floor(x_max / x_step + 1e-9) + 1):  # x ticks, seconds
        x_value = x_step * i
        out.append(
            f'<text x="{px(x_value):.1f}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{_fmt(x_value)}</text>'
        )
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
        "seconds since the start</text>"
    )
    out.append(
        f'<text x="12" y="{top + plot_h / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2})">{html.escape(y_label)}</text>'
    )
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#9ca3af"/>'
    )
    for n, (label, points) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        if bars:
            slot = plot_w / max(1, len(points)) / max(1, len(series))
            for x, y in points:
                x0 = px(x) - slot * len(series) + n * slot
                out.append(
                    f'<rect x="{max(left, x0):.1f}" y="{py(y):.1f}" width="{max(1.0, slot):.1f}" '
                    f'height="{top + plot_h - py(y):.1f}" fill="{colour}"/>'
                )
        elif points:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        lx = left + 8 + 150 * n
        out.append(f'<rect x="{lx}" y="{top + 6}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{top + 15}" font-size="11">{html.escape(label)}</text>')
    if not values:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" font-size="12" '
            'text-anchor="middle" fill="#6b7280">nothing recorded</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def charts(windows: Sequence[Window], x_max: float) -> list[str]:
    """The four charts: joins/s admitted, time to first audio, parts late, errors by kind."""
    mid = [(w.start + w.end) / 2 for w in windows]
    joins = [(x, w.joins_per_second) for x, w in zip(mid, windows, strict=True)]
    users = [(x, float(w.users)) for x, w in zip(mid, windows, strict=True)]
    p50 = [(x, w.ttfa_p50) for x, w in zip(mid, windows, strict=True) if w.ttfa_p50 is not None]
    p99 = [(x, w.ttfa_p99) for x, w in zip(mid, windows, strict=True) if w.ttfa_p99 is not None]
    late = [(w.end, float(w.parts_late)) for w in windows]
    kinds = sorted({k for w in windows for k in w.errors})
    errors = [
        (
            kind + (" (refused)" if kind in REFUSAL_KINDS else ""),
            [(w.end, w.errors.get(kind, 0) / w.seconds) for w in windows],
        )
        for kind in kinds
    ]
    return [
        line_chart("Joins admitted per second", [("joins/s", joins)], "joins/s", x_max),
        line_chart("Users running", [("users", users)], "users", x_max),
        line_chart(
            "Time to first audio (visits that got it in each window)",
            [("p50", p50), ("p99", p99)],
            "seconds",
            x_max,
        ),
        line_chart("Parts late (stalls)", [("late parts", late)], "parts", x_max, bars=True),
        line_chart("Errors by kind", errors, "per second", x_max),
    ]


def html_report(summary: Summary, windows: Sequence[Window], verdict: str, command: str) -> str:
    """One self-contained HTML page: the summary, the charts, the requests."""
    s = summary
    rows = [
        ("target", s.target + (f" (space {s.space})" if s.space else "")),
        ("listeners", f"{s.listeners}, ramp {s.ramp:g} s, ran {s.elapsed:.1f} s"),
        (
            "joins admitted",
            f"{s.joins_admitted} ({s.joins_per_second_mean:.1f}/s mean, "
            f"{s.joins_per_second_peak:.1f}/s peak)",
        ),
        (
            "time to first audio",
            f"p50 {_s(s.ttfa_p50)}, p99 {_s(s.ttfa_p99)} ({s.ttfa_count} visits)",
        ),
        ("parts", f"{s.parts} received, {s.parts_late} late ({s.late_ratio:.2%})"),
        (
            "part delay after its audio's end",
            f"p50 {_s(s.part_delay_p50, 3)}, p99 {_s(s.part_delay_p99, 3)}",
        ),
        (
            "live event delay after publication",
            f"p50 {_s(s.event_delay_p50, 3)}, p99 {_s(s.event_delay_p99, 3)}",
        ),
        ("waits", f"{s.waits_in_line} in line, {s.retries} retries"),
        (
            "requests",
            f"{s.requests}; errors {s.hard_errors} ({s.hard_error_ratio:.2%}), "
            f"refused politely {s.refused}",
        ),
        (
            "requests per listener",
            f"{s.requests_per_listener_second:.3f} a second, everything included",
        ),
        ("errors by kind", ", ".join(f"{k}: {n}" for k, n in s.errors.items()) or "none"),
    ]
    table = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    requests = "\n".join(
        f"<tr><td>{html.escape(n)}</td><td>{c}</td><td>{f}</td><td>{_s(p50, 3)}</td>"
        f"<td>{_s(p99, 3)}</td></tr>"
        for n, c, f, p50, p99 in s.requests_by_name
    )
    figures = "\n".join(f"<figure>{svg}</figure>" for svg in charts(windows, s.elapsed))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>causerie rehearsal: {html.escape(s.target)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #111827; max-width: 60rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ text-align: left; padding: 0.25rem 0.75rem; border-bottom: 1px solid #e5e7eb; }}
figure {{ margin: 1.5rem 0; }}
code {{ background: #f3f4f6; padding: 0.1rem 0.3rem; }}
.verdict {{ font-weight: bold; }}
</style>
</head>
<body>
<h1>causerie rehearsal</h1>
<p><code>{html.escape(command)}</code></p>
<p class="verdict">{html.escape(verdict)}</p>
<table>
{table}
</table>
{figures}
<h2>Requests</h2>
<table>
<tr><th>request</th><th>count</th><th>failed</th><th>p50</th><th>p99</th></tr>
{requests}
</table>
<p>What each figure means: docs/rehearse.md in causerie.</p>
</body>
</html>
"""
