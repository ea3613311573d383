"""Metric families in Prometheus's text format, with prometheus_client.

A custom collector builds fresh metrics from the probes' states on every
scrape (nothing is kept in prometheus_client's own registry between runs).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from probe.core.metrics import Family, ProbeState


def to_metrics(families: list[Family]) -> Iterator[Metric]:
    for family in families:
        labels = sorted({key for labels, _ in family.samples for key in labels})
        metric: GaugeMetricFamily | CounterMetricFamily
        if family.kind == "counter":
            metric = CounterMetricFamily(family.name, family.help, labels=labels)
        else:
            metric = GaugeMetricFamily(family.name, family.help, labels=labels)
        for sample_labels, value in family.samples:
            metric.add_metric([sample_labels.get(key, "") for key in labels], value)
        yield metric


class StateCollector(Collector):
    """Fresh metrics from ``source()`` on each collect (each scrape)."""

    def __init__(self, source: Callable[[], list[Family]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        yield from to_metrics(self._source())


def exposition(source: Callable[[], list[Family]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(source))
    return generate_latest(registry)


def write_textfile(path: Path, data: bytes) -> None:
    """Replace ``path`` in one step: a temporary file in the same directory,
    flushed to disk, then renamed over it, so node_exporter's textfile
    collector never reads half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def carried_counts(path: Path, probe: str) -> tuple[int, int, float | None]:
    """Runs, errors and last success time for ``probe`` from an earlier file,
    so one-shot runs writing the same file keep counting."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return 0, 0, None
    runs = errors = 0
    success: float | None = None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("probe") != probe:
                    continue
                if sample.name == "natprobe_runs_total":
                    runs = int(sample.value)
                elif sample.name == "natprobe_run_errors_total":
                    errors = int(sample.value)
                elif sample.name == "natprobe_last_success_timestamp_seconds":
                    success = float(sample.value)
    except ValueError:
        return 0, 0, None
    return runs, errors, success


def carry(state: ProbeState, path: Path) -> None:
    """Start ``state`` from what ``path`` says of the same probe."""
    state.runs, state.errors, state.last_success_at = carried_counts(path, state.name)
