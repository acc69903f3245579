"""Prometheus metrics of the HTTP face and of the projectors (``prometheus-client``).

Requests (count and latency by route and status) and ingest outcomes (by event type) are
counted as they happen; the projectors' state is read from the view store when scraped
(:class:`ProjectorCollector`, cached for a second), so a ``ledger serve`` and a ``ledger
project run --follow --metrics-port N`` report the same series about the same store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from application.status import StatusReport, projection_status
from ledger.errors import LedgerError
from ledger.settings import Settings


class ProjectorCollector(Collector):
    """Per partition: the views' position, the log's end, lag in events and in event-time
    seconds, records/s, last commit time; parked records; whether the read succeeded."""

    def __init__(self, settings: Settings, cache_seconds: float = 1.0) -> None:
        self.settings = settings
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._report: StatusReport | None = None

    def report(self) -> StatusReport | None:
        with self._lock:
            if time.monotonic() - self._read_at > self.cache_seconds:
                try:
                    self._report = projection_status(self.settings)
                except LedgerError:
                    self._report = None
                self._read_at = time.monotonic()
            return self._report

    def collect(self) -> Iterator[Metric]:
        report = self.report()
        up = GaugeMetricFamily("ledger_status_up", "1 if the log and store could be read")
        up.add_metric([], 0.0 if report is None else 1.0)
        yield up
        if report is None:
            return
        labels = ["partition"]
        families = {
            "position": GaugeMetricFamily(
                "ledger_projector_position", "Next log offset the views will apply", labels=labels
            ),
            "end": GaugeMetricFamily("ledger_log_end", "Log end offset", labels=labels),
            "lag_events": GaugeMetricFamily(
                "ledger_projector_lag_events", "Records not applied yet", labels=labels
            ),
            "lag_seconds": GaugeMetricFamily(
                "ledger_projector_lag_seconds",
                "Event-time seconds between the newest applied event and now",
                labels=labels,
            ),
            "rate": GaugeMetricFamily(
                "ledger_projector_records_per_second", "Recent projection speed", labels=labels
            ),
            "committed": GaugeMetricFamily(
                "ledger_projector_last_commit_timestamp_seconds",
                "When the views last committed this partition (Unix time)",
                labels=labels,
            ),
        }
        for p in report.status.partitions:
            label = [str(p.partition)]
            families["position"].add_metric(label, p.position)
            families["end"].add_metric(label, p.end)
            families["lag_events"].add_metric(label, p.lag_events)
            if p.lag_seconds is not None:
                families["lag_seconds"].add_metric(label, p.lag_seconds)
            families["rate"].add_metric(label, p.rate or 0.0)
            if p.committed_at is not None:
                families["committed"].add_metric(label, p.committed_at.timestamp())
        yield from families.values()
        parked = GaugeMetricFamily("ledger_parked_records", "Records parked as dead letters")
        parked.add_metric([], report.status.rows.get("dead_letters", 0))
        yield parked
        unprojected = GaugeMetricFamily(
            "ledger_unprojected_records", "Records in the log the views do not hold yet"
        )
        unprojected.add_metric([], report.status.unprojected)
        yield unprojected
        scraped = GaugeMetricFamily("ledger_status_read_timestamp_seconds", "When read")
        scraped.add_metric([], datetime.now(UTC).timestamp())
        yield scraped


class HttpMetrics:
    """The registry of one server process: its requests, ingest outcomes and projectors."""

    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        self.projectors = ProjectorCollector(settings)
        self.registry.register(self.projectors)
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.events = Counter(
            "ledger_ingest_events",
            "Events received over HTTP by outcome (accepted, duplicate, rejected) and type",
            ["outcome", "type"],
            registry=self.registry,
        )


def projector_registry(settings: Settings) -> CollectorRegistry:
    """A registry with only the projector series (``project run --metrics-port``)."""
    registry = CollectorRegistry()
    registry.register(ProjectorCollector(settings))
    return registry


def serve_projector_metrics(settings: Settings, port: int, host: str = "0.0.0.0") -> None:
    """Serve the projector series on ``host:port``/metrics from a daemon thread."""
    start_http_server(port, addr=host, registry=projector_registry(settings))
