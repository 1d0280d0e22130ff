"""The kubernetes executor: one ApiClient and thread pool per service, actions by name."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from remediator_integrations.kubernetes.actions import ACTIONS
from remediator_integrations.kubernetes.client import Kube, load_api_client
from remediator_integrations.kubernetes.model import KubernetesSettings
from remediator_integrations.kubernetes.names import check_label, check_subdomain
from remediator_integrations.kubernetes.params import Params

from remediator.plugins import ActionFailed, ActionRequest, ActionResult, ExecutorContext

__all__ = ["KubernetesExecutor", "create"]

_THREADS: Final = 8
_TEMPLATE_MARK: Final = re.compile(r"{{|{%|{#")


class KubernetesExecutor:
    """Runs `type: kubernetes` actions. Credentials are loaded on first use, so a service
    without Kubernetes rules starts without a kubeconfig."""

    def __init__(self, settings: KubernetesSettings) -> None:
        self._settings = settings
        self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="kubernetes")
        self._kube: Kube | None = None
        self._connecting = asyncio.Lock()

    async def run(self, request: ActionRequest) -> ActionResult:
        """Do the action named by `request.params["action"]`; raise ActionFailed."""
        action = ACTIONS.get(str(request.params.get("action")))
        if action is None:
            raise ActionFailed(f"unknown kubernetes action {request.params.get('action')!r}")
        return await action(await self._connect(), Params(request.params), request)

    def check(self, params: Mapping[str, Any]) -> list[str]:
        """Names written literally (no template) that Kubernetes would refuse."""
        problems: list[str] = []
        checks = (("namespace", check_label), ("name", check_subdomain), ("node", check_subdomain))
        for key, check in checks:
            value = params.get(key)
            if isinstance(value, str) and not _TEMPLATE_MARK.search(value):
                try:
                    check(key, value)
                except ActionFailed as failure:
                    problems.append(failure.summary)
        return problems

    async def close(self) -> None:
        """Close the API connections and the thread pool."""
        if self._kube is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._kube.close)
            self._kube = None
        # Do not wait: a thread may still be in one request, bounded by request_timeout.
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _connect(self) -> Kube:
        async with self._connecting:
            if self._kube is None:
                loop = asyncio.get_running_loop()
                api_client = await loop.run_in_executor(self._pool, load_api_client, self._settings)
                self._kube = Kube(api_client, self._settings, self._pool)
            return self._kube


def create(context: ExecutorContext) -> KubernetesExecutor:
    """The plugin factory: the executor for the `executors.kubernetes` settings."""
    settings = context.settings
    if not isinstance(settings, KubernetesSettings):
        settings = KubernetesSettings()
    return KubernetesExecutor(settings)
