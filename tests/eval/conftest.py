"""Evaluation tests: one torch thread (the judge fixture lives in tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    # the judges here are tiny: a second intra-op thread only adds synchronisation (tests/conftest.py)
    yield
