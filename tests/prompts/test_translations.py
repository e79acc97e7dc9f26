"""The prompts pages speak the user's language: refusals and the pages' scripts.
(That every string has its German: tests/core/test_translations.py, for the whole UI.)"""

from __future__ import annotations

import pytest
from django.utils import translation


def test_refusals_speak_the_users_language():
    from prompts.variables import TemplateInvalid, inputs_clean, schema_parse

    specs, _ = schema_parse([{"name": "topic", "kind": "short_text", "max_length": 3}])
    with translation.override("de"), pytest.raises(TemplateInvalid) as refused:
        inputs_clean(specs, {"topic": "toolong"})
    assert refused.value.problems[0].message.startswith("Höchstens 3 Zeichen")


@pytest.mark.django_db
def test_the_pages_scripts_speak_the_language_the_lms_gave_the_user(student):
    from django.test import Client

    student.locale = "de-DE"
    student.save(update_fields=["locale"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(student)
    catalog_js = client.get("/jsi18n/prompts/").content.decode()
    assert "Antwort kopieren" in catalog_js or "Kontingent" in catalog_js
