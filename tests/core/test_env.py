"""Settings from the environment: defaults, parsing, and clear refusals."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from caipi import env


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch):
    # These tests read made-up variables; keep them out of the documented registry.
    monkeypatch.setattr(env, "VARIABLES", {})


def test_an_unset_variable_takes_its_default(monkeypatch):
    monkeypatch.delenv("CAIPI_TEST_NUMBER", raising=False)
    assert env.env_int("CAIPI_TEST_NUMBER", 7, "a number") == 7


def test_a_boolean_accepts_the_usual_spellings(monkeypatch):
    for raw, expected in [("yes", True), ("ON", True), ("1", True), ("off", False), ("0", False)]:
        monkeypatch.setenv("CAIPI_TEST_FLAG", raw)
        assert env.env_bool("CAIPI_TEST_FLAG", not expected, "a flag") is expected


def test_an_unparseable_number_names_the_variable_and_the_fix(monkeypatch):
    monkeypatch.setenv("CAIPI_TEST_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured) as refused:
        env.env_int("CAIPI_TEST_NUMBER", 7, "a number")
    assert "CAIPI_TEST_NUMBER='ten'" in str(refused.value)
    assert "unset it to use the default" in str(refused.value)


def test_a_number_below_its_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("CAIPI_TEST_NUMBER", "-3")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env.env_int("CAIPI_TEST_NUMBER", 7, "a number", minimum=0)


def test_a_url_with_the_wrong_scheme_is_refused(monkeypatch):
    monkeypatch.setenv("CAIPI_TEST_URL", "mysql://db/caipi")
    with pytest.raises(ImproperlyConfigured, match="postgresql://"):
        env.env_url("CAIPI_TEST_URL", None, "a url", schemes=("postgresql",))


def test_a_list_drops_blank_items(monkeypatch):
    monkeypatch.setenv("CAIPI_TEST_LIST", " a, ,b ,")
    assert env.env_list("CAIPI_TEST_LIST", [], "a list") == ["a", "b"]
