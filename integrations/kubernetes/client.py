"""The blocking `kubernetes` client, driven from async code one short request at a time.

Every request runs in the executor's thread pool with `request_timeout`. Cancelling the
awaiting task (the core's action timeout) takes effect at once for the caller; the thread
finishes its one bounded request on its own. Nothing here waits inside a thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import pydantic
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from remediator_integrations.kubernetes.errors import api_failure, connection_failure
from remediator_integrations.kubernetes.model import KubernetesSettings

from remediator.plugins import ActionFailed

__all__ = ["DRY_RUN_ALL", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "Kube", "load_api_client"]

STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
DRY_RUN_ALL: Final = "All"


def load_api_client(settings: KubernetesSettings) -> Any:
    """An ApiClient from the in-cluster ServiceAccount or a kubeconfig (blocking: file I/O).

    Raises a non-retryable ActionFailed when the configuration cannot be loaded.
    """
    configuration = client.Configuration()
    # The kubernetes package is typed, but its config loaders are not annotated.
    try:
        if settings.in_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=settings.kubeconfig,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,  # never rewrite the user's kubeconfig
            )
    except (ConfigException, OSError, ValueError) as error:
        raise ActionFailed(f"cannot load the Kubernetes configuration: {error}") from None
    # One quick retry of a dropped keep-alive connection; never re-send a request that
    # reached the server (read=0): the core retries whole actions with backoff.
    configuration.retries = urllib3.Retry(total=1, read=0, redirect=0, status=0)
    return client.ApiClient(configuration)


class Kube:
    """The typed APIs of one ApiClient, each call run off the event loop with error mapping."""

    def __init__(
        self, api_client: Any, settings: KubernetesSettings, pool: ThreadPoolExecutor
    ) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.request_timeout = settings.request_timeout.total_seconds()
        self.poll_interval = settings.poll_interval.total_seconds()
        self._pool = pool

    async def call(self, target: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`method(*args, **kwargs)` in a thread; API errors become ActionFailed about `target`.

        `target` names the object for messages, e.g. "deployment shop/checkout".
        """
        kwargs.setdefault("_request_timeout", self.request_timeout)
        call = functools.partial(method, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except ApiException as error:
            raise api_failure(error, target) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise connection_failure(error, target) from None
        except pydantic.ValidationError as error:
            # The client validates request bodies against the API's types before sending.
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"][1:])
            raise ActionFailed(
                f"{target}: invalid request: {where}: {first['msg']}", output=str(error)
            ) from None

    def close(self) -> None:
        """Close pooled connections (blocking, quick)."""
        self.api_client.close()
