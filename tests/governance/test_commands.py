"""``manage.py apikeys``: create prints the key last, list and revoke by prefix."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from caipi.core.errors import NotAuthenticated
from caipi.governance.apikeys import apikey_authenticate

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("apikeys", *args, stdout=out)
    return out.getvalue()


def test_create_prints_a_working_key_as_its_last_line(student):
    raw = _run("create", "bob", "--expires", "30", "--models", "small,big").strip().splitlines()[-1]
    principal = apikey_authenticate(raw)
    assert principal.username == "bob" and principal.allowed_models == frozenset({"small", "big"})


def test_list_shows_prefixes_and_revoke_stops_the_key(student):
    raw = _run("create", "bob").strip().splitlines()[-1]
    prefix = raw.split("-")[1]
    assert prefix in _run("list") and raw not in _run("list")
    _run("revoke", prefix)
    assert "revoked" in _run("list", "bob")
    with pytest.raises(NotAuthenticated):
        apikey_authenticate(raw)


def test_create_for_an_unknown_user_fails_clearly(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        _run("create", "nobody")
