"""remediator: from Alertmanager alerts to verified self-healing, with humans paged last."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("remediator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
