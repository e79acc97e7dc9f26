"""The admin REST API for models and endpoints: site admins only, every change audited."""

import pytest

from caipi.governance.models import AuditEntry
from deploy import services
from deploy.models import Endpoint, EndpointState

pytestmark = pytest.mark.django_db


@pytest.fixture
def served_model(db):
    return services.model_create(name="llama-8b", served_name="meta-llama/Llama-3.1-8B")


def test_an_admin_adds_an_endpoint_and_the_change_is_audited_without_its_token(
    client, admin, served_model
):
    client.force_login(admin)
    response = client.post(
        "/api/deploy/endpoints/",
        {"model": "llama-8b", "url": "http://gpu1:8000", "weight": 2, "token": "s3cret"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert b"s3cret" not in response.content
    entry = AuditEntry.objects.get(action="endpoint.add")
    assert entry.actor == admin
    assert entry.after["url"] == "http://gpu1:8000" and "token" not in entry.after


def test_draining_through_the_api_records_the_state_change(client, admin, served_model):
    endpoint = services.endpoint_add(model=served_model, url="http://gpu1:8000")
    client.force_login(admin)
    response = client.post(f"/api/deploy/endpoints/{endpoint.pk}/drain/")
    assert response.status_code == 200
    assert Endpoint.objects.get(pk=endpoint.pk).state == EndpointState.DRAINING
    entry = AuditEntry.objects.get(action="endpoint.state")
    assert (entry.before, entry.after) == ({"state": "ready"}, {"state": "draining"})


def test_removing_an_endpoint_keeps_what_it_was_in_the_audit_log(client, admin, served_model):
    endpoint = services.endpoint_add(model=served_model, url="http://gpu1:8000")
    client.force_login(admin)
    assert client.delete(f"/api/deploy/endpoints/{endpoint.pk}/").status_code == 204
    assert AuditEntry.objects.get(action="endpoint.remove").before["url"] == "http://gpu1:8000"


@pytest.mark.parametrize("persona", ["student", "lecturer", "outsider"])
def test_course_members_may_not_touch_models_or_endpoints(client, request, persona, served_model):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/api/deploy/endpoints/").status_code == 403
    response = client.post(
        "/api/deploy/endpoints/",
        {"model": "llama-8b", "url": "http://evil:8000"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Endpoint.objects.exists()


def test_an_anonymous_visitor_is_refused(client, served_model):
    assert client.get("/api/deploy/models/").status_code in (401, 403)
