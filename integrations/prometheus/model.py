"""Settings of the PromQL verifier (`verifiers.promql` in the service config)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from remediator.plugins import Duration


class PrometheusSettings(BaseModel):
    """Where the Prometheus HTTP API is, and how to authenticate to it.

    ```yaml
    verifiers:
      promql:
        url: http://prometheus.monitoring:9090   # the API root, as in Grafana's data source
        bearer_token_env: PROMETHEUS_TOKEN       # or bearer_token_file / bearer_token
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    url: AnyHttpUrl
    """Base URL of Prometheus (or Thanos Query, Mimir, VictoriaMetrics: any server with the
    Prometheus query API); `/api/v1/query` is appended."""
    timeout: Duration = timedelta(seconds=10)
    """One query's time limit; a query that takes longer counts as a failed check."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers, e.g. X-Scope-OrgID for a multi-tenant Mimir."""
    bearer_token: str | None = None
    """Sent as `Authorization: Bearer …`; prefer bearer_token_env or bearer_token_file."""
    bearer_token_env: str | None = None
    """Name of an environment variable holding the token."""
    bearer_token_file: Path | None = None
    """A file holding the token, read at every query (so a rotated token takes effect)."""
    verify_tls: bool = True
    ca_file: Path | None = None
    """PEM file of the CA that signs the server's certificate."""

    @model_validator(mode="after")
    def _one_token_source(self) -> Self:
        given = [self.bearer_token, self.bearer_token_env, self.bearer_token_file]
        if sum(value is not None for value in given) > 1:
            raise ValueError(
                "give at most one of bearer_token, bearer_token_env, bearer_token_file"
            )
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self

    def token(self) -> str | None:
        """The bearer token as of now; ValueError naming what is missing."""
        if self.bearer_token_env is not None:
            if self.bearer_token_env not in os.environ:
                raise ValueError(f"environment variable {self.bearer_token_env} is not set")
            return os.environ[self.bearer_token_env]
        if self.bearer_token_file is not None:
            try:
                return self.bearer_token_file.read_text().removesuffix("\n")
            except OSError as error:
                raise ValueError(
                    f"cannot read bearer_token_file {self.bearer_token_file}: {error.strerror}"
                ) from None
        return self.bearer_token
