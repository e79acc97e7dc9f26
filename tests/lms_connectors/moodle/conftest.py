"""The Moodle web services fake (responses recorded from the lab) and a client for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lms_connectors.moodle import MoodleClient
from tests.support.moodle_ws import FakeMoodle, running_moodle


@pytest.fixture
def moodle() -> Iterator[FakeMoodle]:
    with running_moodle() as fake:
        yield fake


@pytest.fixture
def client(moodle: FakeMoodle) -> MoodleClient:
    return MoodleClient(base_url=moodle.base_url, token=moodle.token)
