"""The whole benchmark page, docs/benchmarks.md, around the tables of :mod:`tables`.

Every number in the text comes from the digest of this run; none is written in by hand.
"""

from __future__ import annotations

from typing import Any

from tables import (
    TIMES,
    cpu_table,
    diagnostics_table,
    job_table,
    memory_tables,
    ratio_table,
    show,
    targets_table,
)

__all__ = ["headline", "page"]


def headline(digest: dict[str, Any]) -> str:
    """What the run prints at the end: the quota-bound job and the targets."""
    return f"{job_table(digest)}\n\n{targets_table(digest)}"


def _job_text(digest: dict[str, Any]) -> str:
    job = digest["job"]
    v = job["variants"]
    n, period, optimum = job["max_requests"], job["period"], job["optimum_s"]
    pace = period / n
    lead = v["ours_paced"]["wall_s"]["median"] - v["ours"]["wall_s"]["median"]
    sleep_lead = v["official_sleep"]["wall_s"]["median"] - v["ours"]["wall_s"]["median"]
    retry = v["official_retry"]
    return f"""\
The optimum is what a strict window allows at best: {n} requests at once, then {n} more each
{period:g} s, so {job["minimum"]} requests cannot finish before
`{period:g} * (ceil({job["minimum"]} / {n}) - 1)` = {optimum:g} s. The minimum is one request
per page: every page of every code, once.

- **aiomoomoo's own limiter** counts each request from its grant until {period:g} s after its
  reply, so it fills every window without crossing the server's, and sends nothing twice.
- **Paced at {pace:g} s** (`AsyncLimiter(1, {pace:g})`, or the official client with
  `time.sleep({pace:g})`) nothing is refused either, and the job takes about one request's pace
  per request. aiomoomoo's lead over the paced limiter, {lead:.2f} s here, is the first
  window's burst: at most one period ({period:g} s) per job, however large the job. Over the
  official client paced with a sleep it is {sleep_lead:.2f} s, the same burst plus each
  request's round trip, which the sleep adds to its pace.
- **Unpaced**, the official client's requests beyond the window are refused and resent:
  {show(retry["extra_requests"], "{:g}")} requests more than the minimum, every one of which
  OpenD counts.

At OpenD's own quota, 30 requests in any 30 seconds, a client makes at most one request a
second, so the CPU figures below matter little in practice: at that rate aiomoomoo's
{digest["cpu"]["clients"]["asyncio_1"]["cpu_us_per_page"]["median"]:,.0f} µs per page is
{digest["cpu"]["clients"]["asyncio_1"]["cpu_us_per_page"]["median"] / 1e4:.3f} % of one core,
the official client's
{digest["cpu"]["clients"]["official_1"]["cpu_us_per_page"]["median"]:,.0f} µs
{digest["cpu"]["clients"]["official_1"]["cpu_us_per_page"]["median"] / 1e4:.3f} %.
"""


def _bounds(digest: dict[str, Any]) -> str:
    cpu, n = digest["cpu"], digest["tasks"]
    clients, nf, b, micro = cpu["clients"], cpu["noframe"], cpu["breakdown"], cpu["micro"]
    med = {key: value["median"] for key, value in b.items()}
    path_1, path_n = nf[1]["cpu_us_per_page"]["median"], nf[n]["cpu_us_per_page"]["median"]
    page_1 = clients["asyncio_1"]["cpu_us_per_page"]["median"]
    official = clients["official_1"]["cpu_us_per_page"]["median"]
    rest = page_1 - path_1 - med["frame_us"] - max(med["first_access_us"], 0.0)
    first_access_verdict = (
        ": nothing measurable beside the noise" if abs(med["first_access_us"]) < 3 else ""
    )
    return f"""\
- **The request path.** Without reading `.us`, aiomoomoo's whole request path (build and send
  the request, the event loop, framing and SHA-1, decode) costs {path_1:.0f} µs of CPU per page
  with one task and {path_n:.0f} µs with {n} tasks, which share each `send` and each `epoll`
  wake-up.
- **The frame.** Decoding the page into plain columns costs {med["decode_us"]:.0f} µs, and
  building the 50-row frame from columns decoded before costs {med["frame_us"]:.0f} µs;
  pandas assembling eight ready-made columns by the unchecked `DataFrame._from_arrays` path
  costs {med["floor_us"]:.0f} µs of that, the floor for any frame of these columns. A fresh
  decode-and-build less the two measured apart comes to {med["first_access_us"]:+.1f} µs
  ({show(b["first_access_us"], "{:+.1f}")} over rounds){first_access_verdict}.
- **One task** spends {page_1:.0f} µs per page; the request path, the frame and the first access
  add up to {page_1 - rest:.0f} µs, and the other {rest:.0f} µs is what no offline measurement
  isolates: freeing the previous page and its frame, and the event loop and pandas evicting each
  other from the CPU caches on every round trip.
- **The official client** spends {micro["official"]["median"]:.0f} µs of its {official:.0f} µs
  per page decoding into row dicts and building its frames; the rest is packing the request,
  the socket, and its network thread handing each reply to the calling thread.
- **The server is not the bound.** The lean server spends
  {cpu["server_cpu_us_per_page"]:.0f} µs of CPU per page, in its own process.
"""


def _threads_text(plan: Any, digest: dict[str, Any]) -> str:
    threads = digest["cpu"]["ratios"]["official_threads"]
    return (
        f"The official client's {plan.tasks} threads reach {show(threads, '{:.2f}')} {TIMES} its "
        "one-thread throughput here. Against the lean server it is bound by its own CPU, so its "
        "threads take turns at the GIL instead of overlapping waits; against a slower gateway, "
        "where each call mostly waits for its reply, threads can overlap those waits. "
        f"The {plan.tasks}-caller "
        "columns compare both clients under the same load, not the official client at its best."
    )


def _method(plan: Any, digest: dict[str, Any]) -> str:
    job, n = digest["job"], plan.tasks
    return f"""\
- **Rounds.** Every measurement is repeated ({plan.rounds} rounds of the CPU figures,
  {plan.job_rounds} of the quota-bound job, {plan.walk_rounds} of each memory figure,
  {plan.import_rounds} of the import baseline); the clients take turns within a round in an
  order that rotates from round to round. A cell shows the median and, in brackets, the least
  and the largest round. Ratios are taken within each round, then summarised the same way.
- **Quota-bound job.** The simulator (`aiomoomoo.testing.OpenDSimulator`, a fresh one per run,
  on a thread of the orchestrating process) holds {len(job["codes"])} codes
  ({", ".join(job["codes"])}) and refuses anything over a strict window of
  {job["max_requests"]} requests in any {job["period"]:g} s. Each client fetches every page of
  every code, 50 rows a page; aiomoomoo with `fetch_short_interest_many` (4 codes at a time),
  the official client one code after another. Requests and refusals are the simulator's
  counts.
- **CPU figures.** `bench/lean_server.py`, an asyncio `Protocol` in its own process, answers
  with one precomputed 50-row US page (the simulator's US.AAPL history) and its SHA-1; only the
  44-byte header is packed per request. Each client lives in its own worker process
  (`bench/workers.py`), so `time.process_time()` there is its CPU alone, its own threads
  included. Both connect once and warm up with 200 pages. The official client calls
  `OpenQuoteContext.get_short_interest(code, num=50)`, its log levels at WARNING (its
  production advice), from 1 thread and from {n} threads sharing the context. aiomoomoo calls
  `await client.get_short_interest(code, num=50)` and reads `page.us` (the official client
  always builds its frames) from 1 task and {n} tasks on one `Client(rate_limit=None)`, on
  asyncio's event loop and on uvloop's. Pages per round: {plan.official_pages:,} per official
  series, {plan.ours_pages:,} for 1 task, {plan.concurrent_pages:,} for {n} tasks.
- **Decode + DataFrame offline** runs the same body through each client's own parsing with no
  socket: the official `get_short_interest` on a context whose query processor is swapped for
  the SDK's `binary2pb` and `GetShortInterestQuery.unpack`; aiomoomoo's
  `decode_short_interest` and `rows_to_frame`. {plan.micro_pages:,} pages per round.
- **Memory.** Each figure in a fresh worker process against the lean server's walk of
  {plan.walk_pages:,} pages: `fetch_short_interest` (peak `ru_maxrss` above `VmRSS` at the
  start of the fetch, against the finished frame's `memory_usage(deep=True)`), and
  `iter_short_interest` (peak above `VmRSS` before the walk, at pages
  {plan.walk_marks[0]:,} and {plan.walk_marks[-1]:,}). The import baseline is `VmRSS` of a fresh
  interpreter after its imports, stated apart because it is most of a process's memory and none
  of a walk's.
"""


def page(
    plan: Any,
    digest: dict[str, Any],
    results: dict[str, Any],
    plot_name: str,
    *,
    quick: bool,
    extra: str | None = None,
) -> str:
    """The markdown page; ``extra`` is another benchmark's own section, placed before Method."""
    machine = "\n".join(f"| {key} | {value} |" for key, value in results["machine"].items())
    imports, fetch, walk = memory_tables(digest)
    mode = "quick (a smoke test: too few rounds to trust)" if quick else "full"
    history = digest["memory"]["history"]
    job = digest["job"]
    return f"""\
# Benchmarks: aiomoomoo vs the official moomoo client

What a user of either client lives with is OpenD's quota: how long a job takes under it, and how
many requests it spends. That comes first; CPU and memory, measured without a quota, follow.
Both clients run side by side in one run, on the same machine. Regenerate this page with

```sh
nox -s bench                   # the full run: writes docs/benchmarks.md and docs/{plot_name}
python bench/run.py --quick    # a smoke test of the harness: writes bench/out/ instead
```

This run: {mode}, {results["duration_s"]:.0f} s in all.

## Under the quota: every page of {len(job["codes"])} codes

{job_table(digest)}

{_job_text(digest)}
## CPU per page, without a quota

{cpu_table(digest)}

{_threads_text(plan, digest)}

{ratio_table(digest)}

### Targets

{targets_table(digest)}

## Memory

The interpreter and its imports, before any work:

{imports}

A whole history in one frame: the columns are pulled out of each page as it arrives, so the peak
stays near the frame itself ({show(history["ratio"], "{:.2f}")} {TIMES} here).

{fetch}

A long walk that builds and drops each page's frame stays flat:

{walk}

![Benchmark plot]({plot_name})

{extra + chr(10) if extra else ""}## Method

{_method(plan, digest)}
## Machine

| | |
|---|---|
{machine}

The client and the server of a measurement each get a core on a two-core machine; numbers are
comparable only within one run, which is why both clients are always measured in the same run.

## Where aiomoomoo's CPU per page goes

{_bounds(digest)}
{diagnostics_table(digest)}
"""
