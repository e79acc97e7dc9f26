"""The shared routing version: every change moves it, and a version the cache lost (Redis
restarted empty, or the key evicted) never comes back as one a gateway already holds."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from deploy.selectors import ROUTING_VERSION_KEY, routing_version
from deploy.services import routing_changed

pytestmark = pytest.mark.django_db


def _change(capture) -> int:
    with capture(execute=True):
        routing_changed()
    return routing_version()


def test_every_routing_change_moves_the_version(django_capture_on_commit_callbacks):
    first = _change(django_capture_on_commit_callbacks)
    second = _change(django_capture_on_commit_callbacks)
    assert second == first + 1


def test_a_change_after_the_version_was_lost_is_above_every_version_before_the_loss(
    django_capture_on_commit_callbacks,
):
    cache.set(ROUTING_VERSION_KEY, 41, timeout=None)  # a counter that has counted a while
    held = _change(django_capture_on_commit_callbacks)  # what a gateway process holds
    cache.delete(ROUTING_VERSION_KEY)  # Redis restarted empty, or the key was evicted

    after = _change(django_capture_on_commit_callbacks)

    assert held == 42
    assert after > held


def test_a_change_made_before_the_first_read_is_seen_by_the_first_read(
    django_capture_on_commit_callbacks,
):
    cache.delete(ROUTING_VERSION_KEY)
    assert routing_version() == 0  # nothing changed yet: a gateway starts from 0
    assert _change(django_capture_on_commit_callbacks) > 0
