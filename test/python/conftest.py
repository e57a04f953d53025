"""Fixtures of the cross-language tests: one real cluster for the whole session (a Redis and two
gateway replicas with API-key authentication), and the Python SDK importable from the checkout."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packages" / "sdk-python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import API_KEY, Cluster  # noqa: E402


@pytest.fixture(scope="session")
def cluster():
    # A slow consumer is closed with 1013 once 1 MiB waits for it (the default is 8 MiB): the
    # slow-consumer test then needs a few MiB of answers, not tens.
    running = Cluster(replicas=2, api_keys=(API_KEY,), extra_env={"OPENCLAW_MAX_BUFFERED_BYTES": "1048576"})
    running.start()
    yield running
    running.stop()
