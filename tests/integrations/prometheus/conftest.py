"""The Prometheus query API contract server (tests/prometheus_api.py) as a fixture here."""

from tests.prometheus_api import prometheus_api

__all__ = ["prometheus_api"]
