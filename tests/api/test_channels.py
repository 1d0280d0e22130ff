"""`POST /api/v1/channels/{name}/events`: only configured channels that take events answer.

The PagerDuty webhook flow itself is tested in test_escalation.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.test_remediation import start


async def test_unknown_channels_and_channels_without_events_are_404(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    slack = {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/x"}
    client = await start(aiohttp_client, db_url, tmp_path, "rules: []\n", channels={"s": slack})
    missing = await client.post("/api/v1/channels/nope/events", data=b"{}")
    assert missing.status == 404
    assert "no channel named 'nope'" in (await missing.json())["error"]
    no_events = await client.post("/api/v1/channels/s/events", data=b"{}")
    assert no_events.status == 404
    assert "does not take events" in (await no_events.json())["error"]
