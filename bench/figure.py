"""The page's figure: the quota-bound job over time, CPU per page, and memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from summary import callers

__all__ = ["plot"]

_GREY, _BLUE, _GREEN, _RED, _ORANGE = "#7f7f7f", "#1f77b4", "#2ca02c", "#d62728", "#ff7f0e"


def _bars(
    ax: Any,
    labels: list[str],
    values: list[float],
    colours: list[str],
    rounds: list[list[float]] | None = None,
    fmt: str = "{:,.0f}",
) -> None:
    positions = range(len(values))
    ax.bar(positions, values, color=colours)
    for x, value in zip(positions, values, strict=True):
        ax.annotate(
            fmt.format(value),
            (x, value),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    if rounds is not None:
        for x, points in zip(positions, rounds, strict=True):
            ax.scatter([x + 0.3] * len(points), points, color="black", s=6, zorder=3)
    ax.set_xticks(list(positions), labels, fontsize=8)


def plot(digest: dict[str, Any], results: dict[str, Any], path: Path) -> None:
    """Write the benchmark figure to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(15, 9), layout="constrained")
    grid = figure.add_gridspec(2, 2)

    ax = figure.add_subplot(grid[0, :])
    job = results["job"]
    labels = {
        "ours": (_BLUE, "aiomoomoo, own limiter"),
        "ours_paced": (_GREEN, "aiomoomoo, AsyncLimiter(1, pace)"),
        "official_sleep": (_GREY, "official, sleep(pace)"),
        "official_retry": (_RED, "official, unpaced, retrying"),
    }
    for name, (colour, label) in labels.items():
        runs = job["runs"][name]
        middle = sorted(runs, key=lambda run: run["wall"])[len(runs) // 2]
        done = middle["pages"]
        ax.step(
            [0.0, *done],
            range(len(done) + 1),
            where="post",
            color=colour,
            label=f"{label}: {middle['wall']:.2f} s, {middle['requests']} requests",
        )
    ax.axvline(
        digest["job"]["optimum_s"],
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"optimum {digest['job']['optimum_s']:g} s",
    )
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("pages received")
    ax.legend(fontsize=9, loc="lower right")
    ax.set_title(
        f"Every page of {len(job['codes'])} codes under a strict "
        f"{job['max_requests']}/{job['period']:g} s window (median round)"
    )

    ax = figure.add_subplot(grid[1, 0])
    names = callers(digest["tasks"])
    cpu = results["cpu"]
    colours = [_GREY, _GREY, _BLUE, _BLUE, _ORANGE, _ORANGE]
    _bars(
        ax,
        [label.replace("aiomoomoo ", "").replace(", ", "\n") for label in names.values()],
        [digest["cpu"]["clients"][k]["cpu_us_per_page"]["median"] for k in names],
        colours,
        [[run["cpu_us_per_page"] for run in cpu[k]] for k in names],
    )
    ax.set_title(
        "CPU µs per page in the client, no quota (dots: rounds; blue asyncio, orange uvloop)"
    )

    ax = figure.add_subplot(grid[1, 1])
    memory = digest["memory"]
    imports = memory["imports"]
    first_import = next(k for k in imports if k.startswith("aiomoomoo"))
    _bars(
        ax,
        [
            "import\naiomoomoo",
            f"fetch: frame\n({memory['history']['rows']:,} rows)",
            "fetch: peak\nabove start",
            "walk: peak\nabove start",
        ],
        [
            imports[first_import]["median"],
            memory["history"]["frame_mib"]["median"],
            memory["history"]["growth_mib"]["median"],
            memory["walk"]["growth_last_mib"]["median"],
        ],
        [_GREY, _BLUE, _BLUE, _GREEN],
        fmt="{:.1f}",
    )
    ax.set_ylabel("MiB")
    ax.set_title("Memory")

    figure.suptitle("aiomoomoo vs official moomoo-api, same machine, same run")
    figure.savefig(path, dpi=100)
    plt.close(figure)
