"""The service's Prometheus metrics, in a registry of its own (two apps in one process
do not share counters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

#: latency buckets (seconds): a cached answer takes ~1 ms, a bundle of an archive minutes
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Requests (count and latency by route), the cache (hits, misses, evictions, bytes),
    jobs (duration by kind, coalesced requests) and the index (kernels, files refused)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("corebpf_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("corebpf_request_duration_seconds",
                                 "Time from request to the end of the answer",
                                 ["route"], buckets=_BUCKETS, registry=r)
        self.cache_hits = Counter("corebpf_cache_hits", "Answers found in the cache",
                                  ["kind"], registry=r)
        self.cache_misses = Counter("corebpf_cache_misses", "Answers that had to be computed",
                                    ["kind"], registry=r)
        self.cache_evictions = Counter("corebpf_cache_evictions",
                                       "Cache entries removed to keep within the bound",
                                       ["kind"], registry=r)
        self.cache_bytes = Gauge("corebpf_cache_bytes", "Bytes held by the cache", registry=r)
        self.cache_entries = Gauge("corebpf_cache_entries", "Entries held by the cache",
                                   registry=r)
        self.job_duration = Histogram("corebpf_job_duration_seconds",
                                      "Duration of CPU-bound jobs by kind", ["job"],
                                      buckets=_BUCKETS, registry=r)
        self.coalesced = Counter("corebpf_jobs_coalesced",
                                 "Requests that waited for an identical job already running",
                                 registry=r)
        self.kernels = Gauge("corebpf_kernels", "Kernels the service answers for", registry=r)
        self.index_problems = Gauge("corebpf_index_problems",
                                    "Archive files not served (corrupt, duplicate key, "
                                    "links leaving the archive)", registry=r)
        self.scans = Counter("corebpf_index_scans", "Walks of the archive by cause",
                             ["reason"], registry=r)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["Metrics"]
