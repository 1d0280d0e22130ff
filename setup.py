"""Package discovery that pyproject.toml cannot express on its own.

`integrations/` is installed under the import name `remediator_integrations` so that it
cannot clash with another distribution's top-level `integrations` package. Finding its
subpackages here means a new integration is one new folder, with no packaging edit.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["remediator", "remediator.*"])
    + ["remediator_integrations"]
    + [f"remediator_integrations.{p}" for p in find_packages("integrations")],
    package_dir={"remediator_integrations": "integrations"},
)
