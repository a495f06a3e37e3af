"""``/metrics`` in the Prometheus text format, built with prometheus_client.

Everything comes from the store at scrape time (counts, totals and the duration
histogram are kept per queue by the backend), so any API process reports the
whole cluster, not just itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from corral.backends.base import DURATION_BUCKETS, JobState, QueueStats
from corral.web.auth import Scope
from corral.web.deps import require, settings_of
from corral.web.schemas import COMMON_ERRORS, streamed

__all__ = ["router"]

router = APIRouter(tags=["operations"], responses=COMMON_ERRORS)


class _Snapshot(Collector):
    def __init__(
        self, counts: dict[str, dict[str, int]], stats: dict[str, QueueStats], workers: int
    ) -> None:
        self.counts, self.stats, self.workers = counts, stats, workers

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "corral_jobs", "Jobs per queue and state", labels=["queue", "state"]
        )
        paused = GaugeMetricFamily(
            "corral_queue_paused", "1 when the queue is paused", labels=["queue"]
        )
        for queue, counts in self.counts.items():
            for state in JobState:
                jobs.add_metric([queue, state.value], counts[state.value])
            paused.add_metric([queue], counts["paused"])
        yield jobs
        yield paused
        totals = {
            "completed": "Jobs completed",
            "failed": "Jobs that failed for good (dead-lettered)",
            "retried": "Failed attempts that were retried",
        }
        for name, help_text in totals.items():
            family = CounterMetricFamily(f"corral_jobs_{name}", help_text, labels=["queue"])
            for queue, stats in self.stats.items():
                family.add_metric([queue], getattr(stats, name))
            yield family
        duration = HistogramMetricFamily(
            "corral_job_duration_seconds", "Run time of completed jobs", labels=["queue"]
        )
        for queue, stats in self.stats.items():
            duration.add_metric([queue], _cumulative(stats.buckets), stats.duration_sum)
        yield duration
        yield GaugeMetricFamily("corral_workers", "Live workers", value=self.workers)


class _ThisProcess(Collector):
    """Gauges of the API process that answers (not the cluster): its live dashboard
    streams and the backend event subscriptions it holds (see ``corral.feed``)."""

    def __init__(self, tabs: int, subscriptions: int) -> None:
        self.tabs, self.subscriptions = tabs, subscriptions

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "corral_dashboard_live_tabs",
            "Dashboard tabs with a live stream open on this API process",
            value=self.tabs,
        )
        yield GaugeMetricFamily(
            "corral_event_subscriptions",
            "Backend event subscriptions this API process holds (1 while anything listens)",
            value=self.subscriptions,
        )


def _cumulative(buckets: Iterable[int]) -> list[tuple[str, float]]:
    bounds = [str(b) for b in DURATION_BUCKETS] + ["+Inf"]
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip(bounds, buckets, strict=True):
        running += n
        out.append((bound, running))
    return out


@router.get(
    "/metrics",
    dependencies=[Depends(require(Scope.READ))],
    response_class=Response,
    responses=streamed("text/plain", "the Prometheus text format"),
)
async def metrics(request: Request) -> Any:
    """Per-queue job counts by state, totals, a processing-time histogram, workers; and
    this process's open dashboard live streams and backend event subscriptions."""
    corral = settings_of(request).corral
    overview = await corral.overview()
    counts = {queue.name: queue.counts for queue in overview}
    stats = {queue.name: queue.stats for queue in overview}
    registry = CollectorRegistry()
    registry.register(_Snapshot(counts, stats, len(await corral.workers())))
    live = getattr(request.app.state, "corral_live", None)
    tabs = len(live.tabs) if live is not None else 0
    registry.register(_ThisProcess(tabs, corral.event_feed().subscriptions))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
