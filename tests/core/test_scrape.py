"""/metrics and the details of /readyz are for the scrape network or the scrape token only."""

from __future__ import annotations

import pytest

OUTSIDE = "203.0.113.7"


def test_metrics_are_refused_to_an_address_outside_the_scrape_network(client):
    answer = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert answer.status_code == 403 and b"# TYPE" not in answer.content


def test_metrics_are_served_to_the_scrape_network(client, settings):
    settings.SCRAPE_NETWORKS = ["10.20.0.0/16"]
    answer = client.get("/metrics", REMOTE_ADDR="10.20.3.4")
    assert answer.status_code == 200 and b"# TYPE" in answer.content
    assert client.get("/metrics", REMOTE_ADDR="10.21.0.1").status_code == 403


def test_metrics_are_served_with_the_scrape_token_from_anywhere(client, settings):
    settings.SCRAPE_TOKEN = "scrape-secret-123"
    good = client.get(
        "/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer scrape-secret-123"
    )
    bad = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer guessed")
    assert good.status_code == 200 and bad.status_code == 403


def test_no_token_is_accepted_when_none_is_configured(client, settings):
    settings.SCRAPE_TOKEN = None
    answer = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer ")
    assert answer.status_code == 403


@pytest.mark.django_db
def test_readiness_tells_outsiders_the_status_only(client):
    answer = client.get("/readyz", REMOTE_ADDR=OUTSIDE)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_names_each_check_for_the_scrape_network(client):
    answer = client.get("/readyz", REMOTE_ADDR="::1")
    assert set(answer.json()["checks"]) == {"database", "cache", "broker"}
