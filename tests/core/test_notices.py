"""Admin notices: providers registered by apps, shown to staff only, never breaking a page."""

from __future__ import annotations

import pytest

from caipi.core import notices


@pytest.fixture
def provider():
    notices.register_notices("test-notice", lambda user: [notices.Notice(text="Look here")])
    yield
    notices._PROVIDERS.pop("test-notice", None)


def test_staff_users_see_registered_notices(provider, admin):
    assert notices.Notice(text="Look here") in notices.notices_for(user=admin)


def test_members_without_staff_rights_see_no_notices(provider, student):
    assert notices.notices_for(user=student) == []


def test_a_failing_provider_is_skipped(provider, admin):
    def broken(user):
        raise RuntimeError("boom")

    notices.register_notices("test-broken", broken)
    try:
        assert notices.Notice(text="Look here") in notices.notices_for(user=admin)
    finally:
        notices._PROVIDERS.pop("test-broken", None)
