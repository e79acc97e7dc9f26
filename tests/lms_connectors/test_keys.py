"""Tool keys: made on first use, stored encrypted, rotated with a grace period in the JWKS."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from lms_connectors import keys
from lms_connectors.models import ToolKey


def _kids(client) -> set[str]:
    return {key["kid"] for key in client.get("/lti/jwks/").json()["keys"]}


def test_the_first_jwks_request_makes_a_key_stored_encrypted(client, db):
    jwks = client.get("/lti/jwks/").json()

    (key,) = jwks["keys"]
    assert key["alg"] == "RS256" and key["use"] == "sig" and "d" not in key
    stored = ToolKey.objects.get()
    assert "PRIVATE KEY" not in stored.private_pem_encrypted
    assert "PRIVATE KEY" in keys.signing_key().private_pem


def test_rotation_keeps_the_old_key_published_during_the_grace_period(client, db, settings):
    old = _kids(client)
    call_command("lti_keys", "rotate")
    new = keys.signing_key().kid

    assert _kids(client) == old | {new}
    assert new not in old


def test_after_the_grace_period_only_the_new_key_is_published(client, db):
    old = _kids(client)
    keys.tool_key_rotate()
    ToolKey.objects.exclude(retired_at=None).update(retired_at=timezone.now() - timedelta(days=8))

    assert _kids(client) == {keys.signing_key().kid}
    assert keys.tool_key_prune() == 1
    assert not old & _kids(client)


def test_a_key_unreadable_after_a_secret_key_change_is_replaced(client, db, settings):
    first = keys.signing_key().kid
    settings.SECRET_KEY = "another-secret-key-entirely"

    assert keys.signing_key().kid != first


def test_a_configured_key_file_signs_and_is_published(client, db, settings, tmp_path):
    private_pem, _ = keys._new_key_pems()
    path = tmp_path / "tool.pem"
    path.write_text(private_pem)
    settings.LTI_PRIVATE_KEY_FILE = str(path)

    assert keys.signing_key().private_pem == private_pem
    assert keys.signing_key().kid in _kids(client)
