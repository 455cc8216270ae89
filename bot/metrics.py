"""Prometheus metrics of one bot process, held in a registry the instance owns.

Nothing here touches prometheus-client's global REGISTRY: two `Metrics` (two bots in one test
process) never share a value. The web server serves `render()` at /metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from bot.model import FailureKind, Reason

Outcome = Literal["video", "album", "audio", "cached", "busy", "restarting"]
"""How a request was answered when it was not a failure (a failure is counted by its Reason)."""

# "probe" and "thumbnail" are parts of "fit" (a clip that plays and fits as it is spends its
# "fit" in them).
Stage = Literal["resolve", "download", "fit", "probe", "thumbnail", "upload"]

STAGE_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)

_OUTCOMES: Final = frozenset(get_args(Outcome))
_STAGES: Final = frozenset(get_args(Stage))


class Metrics:
    """The counters, gauges and timings the core and the adapters report to."""

    # generate_latest writes the classic text format; prometheus-client's own server pairs it
    # with version 0.0.4 unless the scraper asks for 1.0.0, and every Prometheus reads 0.0.4.
    content_type: Final = CONTENT_TYPE_PLAIN_0_0_4

    def __init__(self, queue_depth: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "reshare_requests",
            "Links answered, by platform and outcome (a failure's reason, lowercased).",
            ["platform", "outcome"],
            registry=r,
        )
        self._cache_hits = Counter(
            "reshare_cache_hits", "Links answered from the clip cache.", ["platform"], registry=r
        )
        self._joins = Counter(
            "reshare_single_flight_joins",
            "Requests that joined a job already running for the same clip.",
            registry=r,
        )
        self._stage_seconds = Histogram(
            "reshare_job_stage_seconds",
            "Time spent in each stage of a job.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self._retries = Counter(
            "reshare_retries", "Platform calls sent again, by call.", ["what"], registry=r
        )
        self._failures = Counter(
            "reshare_failures", "Jobs that ended in a failure, by reason.", ["reason"], registry=r
        )
        self._fetches = Counter(
            "reshare_fetches",
            "Fetches from a site by the first path (yt-dlp, gallery-dl), by outcome: ok, or how "
            "the site refused (extraction, challenge, blocked_ip, login_wall, server_error).",
            ["site", "outcome"],
            registry=r,
        )
        self._incidents = Gauge(
            "reshare_site_incident",
            "1 while this process knows of an incident of the site, by its kind.",
            ["site", "kind"],
            registry=r,
        )
        self._second_path = Counter(
            "reshare_second_path",
            "Fetches handed to the second path (cobalt), by outcome: ok or the failure's reason.",
            ["outcome"],
            registry=r,
        )
        self._queue_depth = Gauge("reshare_queue_depth", "Jobs waiting in the queue.", registry=r)
        self._workers_alive = Gauge("reshare_workers_alive", "Workers running.", registry=r)
        # Known label values start at 0, so a rate() over them exists before the first event.
        for stage in sorted(_STAGES):
            self._stage_seconds.labels(stage)
        for reason in Reason:
            self._failures.labels(_label(reason))
        self._queue_depth.set_function(lambda: math.nan)
        if queue_depth is not None:
            self.watch_queue(queue_depth)

    def request(self, platform: str, outcome: Outcome | Reason) -> None:
        """Count one link answered; a Reason is recorded as its lowercased name."""
        if isinstance(outcome, Reason):
            label = _label(outcome)
        elif outcome in _OUTCOMES:
            label = outcome
        else:
            raise ValueError(f"unknown outcome {outcome!r}")
        self._requests.labels(platform, label).inc()

    def cache_hit(self, platform: str) -> None:
        self._cache_hits.labels(platform).inc()

    def joined(self) -> None:
        """Count a request that joined a job already running for the same clip."""
        self._joins.inc()

    def retry(self, what: str) -> None:
        """Count a platform call sent again; `what` names the call (a small, fixed set)."""
        self._retries.labels(what).inc()

    def failure(self, reason: Reason) -> None:
        """Count a job that failed: once per job, however many requests were waiting on it."""
        self._failures.labels(_label(reason)).inc()

    def fetched(self, site: str, kind: FailureKind | None) -> None:
        """Count one fetch by the first path: it worked (None) or failed by `kind`."""
        self._fetches.labels(site, kind.value if kind else "ok").inc()

    def incident(self, site: str, kind: FailureKind, going_on: bool) -> None:
        self._incidents.labels(site, kind.value).set(1 if going_on else 0)

    def second_path(self, outcome: Reason | None) -> None:
        self._second_path.labels(_label(outcome) if outcome else "ok").inc()

    @contextmanager
    def stage(self, stage: Stage) -> Iterator[None]:
        """Time the block as one `stage` of a job, whether it ends well or raises.

        A plain context manager: it works around `await` as well, since it only reads the clock.
        """
        if stage not in _STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        child = self._stage_seconds.labels(stage)
        started = time.perf_counter()
        try:
            yield
        finally:
            child.observe(time.perf_counter() - started)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from `depth` at each scrape; NaN if it raises."""

        def read() -> float:
            try:
                return float(depth())
            except Exception:
                # A scrape must not fail because the queue is gone (stopping) or unreachable.
                return math.nan

        self._queue_depth.set_function(read)

    def set_workers_alive(self, count: int) -> None:
        self._workers_alive.set(count)

    def render(self) -> bytes:
        """The registry in Prometheus's text format; serve it with `content_type`."""
        return generate_latest(self.registry)


def _label(reason: Reason) -> str:
    return reason.name.lower()
