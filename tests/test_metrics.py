"""Metrics: each instance owns its registry, and what the core counts shows in the exposition."""

from __future__ import annotations

import asyncio
import math

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import STAGE_BUCKETS, Metrics
from bot.model import Reason


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, keyed by sample name and labels."""
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, frozenset(labels.items()))]


def test_counters_show_what_was_counted() -> None:
    metrics = Metrics()
    metrics.request("telegram", "video")
    metrics.request("telegram", "video")
    metrics.request("discord", "cached")
    metrics.request("telegram", Reason.PRIVATE)
    metrics.request("discord", Reason.TIMED_OUT)
    metrics.cache_hit("discord")
    metrics.joined()
    metrics.joined()
    metrics.joined()
    metrics.retry("sendVideo")
    metrics.failure(Reason.REMOVED)
    metrics.set_workers_alive(4)

    assert value(metrics, "reshare_requests_total", platform="telegram", outcome="video") == 2
    assert value(metrics, "reshare_requests_total", platform="discord", outcome="cached") == 1
    assert value(metrics, "reshare_requests_total", platform="telegram", outcome="private") == 1
    assert value(metrics, "reshare_requests_total", platform="discord", outcome="timed_out") == 1
    assert value(metrics, "reshare_cache_hits_total", platform="discord") == 1
    assert value(metrics, "reshare_single_flight_joins_total") == 3
    assert value(metrics, "reshare_retries_total", what="sendVideo") == 1
    assert value(metrics, "reshare_failures_total", reason="removed") == 1
    assert value(metrics, "reshare_failures_total", reason="private") == 0
    assert value(metrics, "reshare_workers_alive") == 4


def test_every_reason_and_stage_is_exposed_before_it_happens() -> None:
    found = samples(Metrics())
    for reason in Reason:
        key = ("reshare_failures_total", frozenset({("reason", reason.name.lower())}))
        assert found[key] == 0
    for stage in ("resolve", "download", "fit", "upload"):
        assert found[("reshare_job_stage_seconds_count", frozenset({("stage", stage)}))] == 0


def test_instances_share_nothing() -> None:
    one, two = Metrics(), Metrics()
    one.request("telegram", "video")
    one.joined()

    assert value(one, "reshare_requests_total", platform="telegram", outcome="video") == 1
    assert not any(name == "reshare_requests_total" for name, _ in samples(two))
    assert value(two, "reshare_single_flight_joins_total") == 0
    # Nothing reaches prometheus-client's process-wide registry.
    assert REGISTRY.get_sample_value("reshare_single_flight_joins_total") is None


def test_stage_times_the_block_even_when_it_raises() -> None:
    metrics = Metrics()
    with metrics.stage("fit"):
        pass
    with pytest.raises(RuntimeError), metrics.stage("fit"):
        raise RuntimeError("ffmpeg died")

    assert value(metrics, "reshare_job_stage_seconds_count", stage="fit") == 2
    assert value(metrics, "reshare_job_stage_seconds_count", stage="upload") == 0


async def test_stage_around_await_measures_the_wait() -> None:
    metrics = Metrics()
    async with asyncio.timeout(5):
        with metrics.stage("download"):
            await asyncio.sleep(0.05)

    total = value(metrics, "reshare_job_stage_seconds_sum", stage="download")
    assert 0.04 <= total < 2
    # It fell in the 0.05 s or 0.1 s bucket, not below.
    assert value(metrics, "reshare_job_stage_seconds_bucket", stage="download", le="0.025") == 0
    assert value(metrics, "reshare_job_stage_seconds_bucket", stage="download", le="0.1") == 1


def test_buckets_span_five_ms_to_five_minutes() -> None:
    assert STAGE_BUCKETS[0] == 0.005
    assert STAGE_BUCKETS[-1] == 300
    assert list(STAGE_BUCKETS) == sorted(STAGE_BUCKETS)


def test_queue_depth_is_read_at_scrape_time() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    metrics = Metrics(queue_depth=queue.qsize)
    assert value(metrics, "reshare_queue_depth") == 0
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert value(metrics, "reshare_queue_depth") == 2


def test_queue_depth_set_later_and_unreadable_queue_does_not_break_the_scrape() -> None:
    metrics = Metrics()
    assert math.isnan(value(metrics, "reshare_queue_depth"))
    metrics.watch_queue(lambda: 7)
    assert value(metrics, "reshare_queue_depth") == 7

    def gone() -> int:
        raise ConnectionError("queue closed")

    metrics.watch_queue(gone)
    assert math.isnan(value(metrics, "reshare_queue_depth"))


def test_unknown_labels_are_refused() -> None:
    """Free-form outcomes or stages would grow the series without bound."""
    metrics = Metrics()
    with pytest.raises(ValueError, match="outcome"):
        metrics.request("telegram", "exploded")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stage"), metrics.stage("encode"):  # type: ignore[arg-type]
        pass


def test_content_type_is_prometheus_text() -> None:
    assert Metrics.content_type.startswith("text/plain; version=0.0.4")
    assert b"# TYPE reshare_requests_total counter" in Metrics().render()
