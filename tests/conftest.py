import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# CI: derandomised and bounded, so a run is reproducible and fast. Locally: more examples.
settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
