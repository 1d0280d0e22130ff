"""The alert rules that watch remediator itself load in Prometheus, pass their promtool tests,
and only use metrics remediator really exports (a renamed metric would silence an alert)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry

from remediator.metrics import Metrics
from tests.conftest import missing

FOLDER = Path(__file__).resolve().parents[3] / "integrations" / "prometheus"
RULES = FOLDER / "remediator.rules.yml"
TESTS = FOLDER / "tests" / "remediator.rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        missing("promtool (Debian package prometheus)")
    assert binary is not None
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_rules_load_in_prometheus() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_rules_fire_as_their_promtool_tests_say() -> None:
    result = promtool("test", "rules", str(TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_rules_use_is_exported() -> None:
    used = set(re.findall(r"\b(remediator_[a-z_]+)", RULES.read_text()))
    registry = CollectorRegistry()
    Metrics(registry)
    exported = {
        sample_name
        for family in registry.collect()
        for sample_name in (family.name, f"{family.name}_total")
    }
    assert used, "the rules name no remediator metric"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
