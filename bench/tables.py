"""The page's tables, in markdown, from a :func:`summary.summarise` digest.

Every cell that is a measurement shows its median and, in brackets, the least and largest round.
"""

from __future__ import annotations

from typing import Any

from summary import callers

__all__ = [
    "TIMES",
    "cpu_table",
    "diagnostics_table",
    "job_table",
    "memory_tables",
    "ratio_table",
    "show",
    "targets_table",
]

#: The multiplication sign and the en dash of a range, spelled out so the source stays ASCII.
TIMES = "\u00d7"
DASH = "\u2013"


def show(figure: dict[str, float], spec: str = "{:,.0f}", unit: str = "") -> str:
    """``median (min-max)`` (an en dash in the range), or the one value of a single round."""
    median = spec.format(figure["median"]) + unit
    if figure["n"] < 2:
        return median
    return f"{median} ({spec.format(figure['min'])}{DASH}{spec.format(figure['max'])})"


def _rows(header: list[str], rows: list[list[str]], align: str = "---:") -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|" + "|".join([align] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


_JOB_NAMES = {
    "ours": "aiomoomoo, `rate_limit=({n}, {period:g})`",
    "ours_paced": "aiomoomoo, `aiolimiter.AsyncLimiter(1, {pace:g})`",
    "official_sleep": "official, `time.sleep({pace:g})` between requests",
    "official_retry": "official, unpaced, a refused request resent after {pace:g} s",
}


def job_table(digest: dict[str, Any]) -> str:
    """The quota-bound job: requests against the minimum and wall time against the optimum."""
    job = digest["job"]
    n, period = job["max_requests"], job["period"]
    names = {k: v.format(n=n, period=period, pace=period / n) for k, v in _JOB_NAMES.items()}
    rows = []
    for key, name in names.items():
        v = job["variants"][key]
        rows.append(
            [
                name,
                show(v["requests"], "{:g}"),
                show(v["refused"], "{:g}"),
                show(v["wall_s"], "{:.2f}"),
                show(v["over_optimum_s"], "{:+.2f}"),
            ]
        )
    header = [
        f"{len(job['codes'])} codes, every page, strict window {n}/{period:g} s",
        f"requests (minimum {job['minimum']})",
        "refused by the server",
        "wall time, s",
        f"over the {job['optimum_s']:g} s optimum, s",
    ]
    return _rows(header, rows)


def cpu_table(digest: dict[str, Any]) -> str:
    """Throughput, CPU per page and latency of every caller."""
    clients, n = digest["cpu"]["clients"], digest["tasks"]
    names = callers(n)
    header = ["50-row pages, no quota", *names.values()]

    def row(label: str, metric: str, spec: str = "{:,.0f}") -> list[str]:
        cells = [show(clients[k][metric], spec) if metric in clients[k] else "" for k in names]
        return [label, *cells]

    return _rows(
        header,
        [
            row("Throughput, pages/s", "pages_per_s"),
            row("CPU per page in the calling process, µs", "cpu_us_per_page"),
            row("Latency p50, µs", "p50_us"),
            row("Latency p99, µs", "p99_us"),
        ],
    )


def ratio_table(digest: dict[str, Any]) -> str:
    """Official ÷ aiomoomoo, round by round, at the same number of callers."""
    ratios, n = digest["cpu"]["ratios"], digest["tasks"]
    spec = "{:.2f}"
    rows = []
    for width in (1, n):
        callers_label = "1 caller" if width == 1 else f"{n} callers (threads / tasks)"
        rows.append(
            [
                f"CPU per page, official ÷ aiomoomoo, {callers_label}",
                *(show(ratios[f"cpu_{loop}_{width}"], spec) for loop in ("asyncio", "uvloop")),
            ]
        )
        rows.append(
            [
                f"Throughput, aiomoomoo ÷ official, {callers_label}",
                *(
                    show(ratios[f"throughput_{loop}_{width}"], spec)
                    for loop in ("asyncio", "uvloop")
                ),
            ]
        )
    rows.append(
        [
            "CPU of decode + DataFrame offline (no socket), official ÷ aiomoomoo",
            show(ratios["micro"], spec),
            "",
        ]
    )
    return _rows(["Ratio, per round", "asyncio", "uvloop"], rows)


def memory_tables(digest: dict[str, Any]) -> tuple[str, str, str]:
    """The import baseline, the fetch's peak against its frame, and the long walk."""
    memory = digest["memory"]
    imports = _rows(
        ["A fresh interpreter after importing", "resident memory, MiB"],
        [[name, show(value, "{:.1f}")] for name, value in memory["imports"].items()],
    )
    h = memory["history"]
    fetch = _rows(
        [f"`fetch_short_interest`, {h['rows']:,} rows", "value"],
        [
            ["The finished frame (`memory_usage(deep=True)`), MiB", show(h["frame_mib"], "{:.1f}")],
            [
                "Peak resident memory above the start of the fetch, MiB",
                show(h["growth_mib"], "{:.1f}"),
            ],
            ["Peak above the start ÷ frame", show(h["ratio"], "{:.2f}", f" {TIMES}")],
            ["Wall time, s", show(h["wall_s"], "{:.2f}")],
        ],
    )
    w = memory["walk"]
    walk = _rows(
        [f"`iter_short_interest`, one walk of {w['last']:,} pages", "value"],
        [
            ["Resident memory before the walk, MiB", show(w["before_mib"], "{:.1f}")],
            [f"Peak above that at page {w['first']:,}, MiB", show(w["growth_first_mib"], "{:.1f}")],
            [f"Peak above that at page {w['last']:,}, MiB", show(w["growth_last_mib"], "{:.1f}")],
            ["Pages per second (each page's `.us` built)", show(w["pages_per_s"])],
        ],
    )
    return imports, fetch, walk


def diagnostics_table(digest: dict[str, Any]) -> str:
    """Where aiomoomoo's CPU per page goes."""
    cpu, n = digest["cpu"], digest["tasks"]
    nf, b = cpu["noframe"], cpu["breakdown"]
    return _rows(
        ["Diagnostic (aiomoomoo, asyncio)", "value"],
        [
            [
                "Request path without `.us`, 1 task: CPU µs per page",
                show(nf[1]["cpu_us_per_page"]),
            ],
            [
                f"Request path without `.us`, {n} tasks: CPU µs per page",
                show(nf[n]["cpu_us_per_page"]),
            ],
            ["`decode_short_interest` of the page, µs", show(b["decode_us"], "{:.1f}")],
            ["`rows_to_frame` on columns decoded before, µs", show(b["frame_us"], "{:.1f}")],
            ["Fresh decode and build less the two apart, µs", show(b["first_access_us"], "{:.1f}")],
            [
                "pandas' floor: `DataFrame._from_arrays` over 8 ready-made columns, µs",
                show(b["floor_us"], "{:.1f}"),
            ],
            [
                "Lean server CPU per page (its own process), µs",
                f"{cpu['server_cpu_us_per_page']:.1f}",
            ],
        ],
    )


def targets_table(digest: dict[str, Any]) -> str:
    rows = [
        [t["name"], t["target"], t["value"], "met" if t["met"] else "**missed**"]
        for t in digest["targets"]
    ]
    return _rows(["Target", "Wanted", "Measured", ""], rows, align="---")
