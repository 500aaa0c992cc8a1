"""Project-wide pytest configuration.

Hypothesis settings profiles are chosen by environment variable, as in Hypothesis's own suite:
``HYPOTHESIS_PROFILE=dev`` (few examples, for editing), ``default`` and ``ci`` (more examples, derandomised).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, database=None)
settings.register_profile("dev", parent=settings.get_profile("default"), max_examples=20)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    max_examples=200,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))
