"""A tiny metrics registry (counters, histograms, gauges) rendered in Prometheus text format.

No dependency: frontends call the helpers at the bottom (``connection``, ``login``,
``command``, ``delivery``), each a dict update, so counting costs nothing noticeable whether
or not the endpoint is enabled. ``mailhub.ops.metrics_http`` serves :data:`REGISTRY` at
``/metrics`` when ``[metrics] enabled = true`` (exposition format 0.0.4).

Label values are bounded by the callers (protocol names, command names the parser knew,
``ok``/``failed``); :func:`command` folds anything odd into ``other`` so a client sending
random verbs cannot grow the registry without bound.
"""

from __future__ import annotations

import abc
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence

LabelValues = tuple[str, ...]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
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
)
_COMMAND_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,23}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Metric(abc.ABC):
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        return tuple(str(labels.get(n, "")) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    @abc.abstractmethod
    def samples(self) -> list[str]:
        """The metric's sample lines in Prometheus text format."""


class Counter(_Metric):
    """A value that only goes up (restarts reset it; Prometheus' rate() copes)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def total(self) -> float:
        """The sum over every label set."""
        with self._lock:
            return sum(self._values.values())

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in items]


class Gauge(_Metric):
    """A value set directly, or computed by ``func`` at scrape time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        func: Callable[[], Iterable[tuple[LabelValues, float]]] | None = None,
    ) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}
        self.func = func

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[self._key(labels)] = value

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        if self.func is not None:
            items = sorted(self.func())
        else:
            with self._lock:
                items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in items]


class Histogram(_Metric):
    """Observations in cumulative buckets, with their sum and count (for latencies)."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        # per label set: [count per bucket..., +Inf count], sum
        self._series: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = ([0] * (len(self.buckets) + 1), [0.0])
                self._series[key] = series
            counts, total = series
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            total[0] += value

    def count(self, **labels: str) -> int:
        series = self._series.get(self._key(labels))
        return sum(series[0]) if series else 0

    def samples(self) -> list[str]:
        out: list[str] = []
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._series.items())
        for key, (counts, total) in items:
            running = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                running += n
                le = f'le="{_num(bound)}"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {running}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_num(total)}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {running}")
        return out


class Registry:
    """Every metric of the process, in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, labels)
        self._add(metric)
        return metric

    def gauge(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        func: Callable[[], Iterable[tuple[LabelValues, float]]] | None = None,
    ) -> Gauge:
        metric = Gauge(name, help_text, labels, func)
        self._add(metric)
        return metric

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        metric = Histogram(name, help_text, labels, buckets)
        self._add(metric)
        return metric

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(name)

    def render(self) -> str:
        """The whole registry in Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


REGISTRY = Registry()

CONNECTIONS = REGISTRY.counter(
    "mailhub_connections_total", "Connections accepted, by protocol.", ("protocol",)
)
OPEN_CONNECTIONS = REGISTRY.gauge(
    "mailhub_open_connections", "Connections open now, by protocol.", ("protocol",)
)
LOGINS = REGISTRY.counter("mailhub_logins_total", "Successful logins, by protocol.", ("protocol",))
LOGIN_FAILURES = REGISTRY.counter(
    "mailhub_login_failures_total", "Failed logins (bad credentials), by protocol.", ("protocol",)
)
COMMANDS = REGISTRY.counter(
    "mailhub_commands_total", "Commands handled, by protocol and command.", ("protocol", "command")
)
COMMAND_SECONDS = REGISTRY.histogram(
    "mailhub_command_duration_seconds",
    "Time from a command's arrival to its reply, by protocol and command.",
    ("protocol", "command"),
)
DELIVERIES = REGISTRY.counter(
    "mailhub_deliveries_total",
    "Recipients delivered to (result ok) or refused/deferred (result failed), by protocol.",
    ("protocol", "result"),
)


def connection(protocol: str, delta: int = 1) -> None:
    """A connection opened (``delta=1``) or closed (``delta=-1``)."""
    if delta > 0:
        CONNECTIONS.inc(protocol=protocol)
    OPEN_CONNECTIONS.inc(delta, protocol=protocol)


def login(protocol: str, ok: bool) -> None:
    (LOGINS if ok else LOGIN_FAILURES).inc(protocol=protocol)


def command(protocol: str, name: str, seconds: float) -> None:
    """One command and its latency; names that do not look like a verb count as ``other``."""
    verb = name.upper() if _COMMAND_NAME.fullmatch(name) else "other"
    COMMANDS.inc(protocol=protocol, command=verb)
    COMMAND_SECONDS.observe(seconds, protocol=protocol, command=verb)


def delivery(protocol: str, ok: bool, recipients: int = 1) -> None:
    DELIVERIES.inc(recipients, protocol=protocol, result="ok" if ok else "failed")
