"""The dashboard through the real app (tests/api/conftest.py's `make_client`)."""

from tests.api.conftest import make_client, rules_file

__all__ = ["make_client", "rules_file"]
