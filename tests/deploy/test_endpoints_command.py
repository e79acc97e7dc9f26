"""``manage.py models`` / ``endpoints``, the admin REST API, and the Celery health poll."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from deploy.models import Endpoint, EndpointState, Model
from deploy.tasks import poll_endpoints


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def tutor(db) -> Model:
    run("models", "add", "tutor", "--served-name", "sim-model", "--kind", "chat")
    return Model.objects.get(name="tutor")


def test_models_and_endpoints_are_added_from_the_command_line(tutor):
    assert tutor.served_name == "sim-model"
    output = run("endpoints", "add", "tutor", "http://gpu1:8000/", "--weight", "2", "--token", "t")
    endpoint = Endpoint.objects.get()
    assert f"endpoint {endpoint.id}" in output
    assert (endpoint.url, endpoint.weight, endpoint.token) == ("http://gpu1:8000", 2, "t")


def test_adding_to_an_unknown_model_or_a_bad_url_is_refused(tutor):
    with pytest.raises(CommandError, match="No model named"):
        run("endpoints", "add", "nope", "http://gpu1:8000")
    with pytest.raises(CommandError):
        run("endpoints", "add", "tutor", "not a url")


def test_list_shows_state_and_live_load_but_never_the_token(tutor, simulator):
    run("endpoints", "add", "tutor", simulator.url, "--token", "s3cret")
    assert poll_endpoints() == 1
    listing = run("endpoints", "list")
    assert "healthy" in listing and "ready" in listing and simulator.url in listing
    assert "s3cret" not in listing


def test_drain_and_remove(tutor):
    run("endpoints", "add", "tutor", "http://gpu1:8000")
    endpoint = Endpoint.objects.get()
    assert "draining" in run("endpoints", "drain", str(endpoint.id))
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.DRAINING
    run("endpoints", "remove", str(endpoint.id))
    assert not Endpoint.objects.exists()
    with pytest.raises(CommandError, match="No endpoint"):
        run("endpoints", "drain", str(endpoint.id))


def test_site_admins_manage_endpoints_over_the_api(client, admin, tutor):
    client.force_login(admin)
    created = client.post(
        "/api/deploy/endpoints/",
        {"model": "tutor", "url": "http://gpu2:8000", "weight": 3, "token": "s3cret"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["has_token"] is True and "token" not in body
    listing = client.get("/api/deploy/endpoints/")
    assert b"s3cret" not in listing.content and len(listing.json()) == 1
    drained = client.post(f"/api/deploy/endpoints/{body['id']}/drain/")
    assert drained.json()["state"] == "draining"
    assert client.delete(f"/api/deploy/endpoints/{body['id']}/").status_code == 204
    models = client.post(
        "/api/deploy/models/",
        {"name": "coder", "kind": "completion"},
        content_type="application/json",
    )
    assert models.status_code == 201 and models.json()["served_name"] == "coder"


@pytest.mark.parametrize("persona", ["student", "lecturer"])
def test_only_site_admins_may_use_the_deploy_api(client, request, persona, tutor):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/api/deploy/endpoints/").status_code == 403
    response = client.post(
        "/api/deploy/endpoints/",
        {"model": "tutor", "url": "http://x:1"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Endpoint.objects.exists()


def test_anonymous_visitors_are_refused(client, tutor):
    assert client.get("/api/deploy/models/").status_code in (401, 403)
