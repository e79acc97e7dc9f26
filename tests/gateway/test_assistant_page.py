"""The course assistant page lists the models a member may use, and refuses outsiders."""

import pytest

from deploy import services as deploy_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat_model(db):
    model = deploy_services.model_create(name="course-model")
    deploy_services.endpoint_add(model=model, url="http://127.0.0.1:9/")
    return model


def test_a_student_gets_the_chat_with_the_course_model(client, student, course, chat_model):
    client.force_login(student)
    response = client.get(f"/courses/{course.id}/assistant/")
    assert response.status_code == 200
    assert b'<option value="course-model">' in response.content
    assert b"are not stored" in response.content


def test_a_student_of_another_course_cannot_open_the_assistant(client, outsider, course):
    client.force_login(outsider)
    assert client.get(f"/courses/{course.id}/assistant/").status_code == 403


def test_a_model_the_role_may_not_use_is_not_offered(client, student, course, chat_model):
    from caipi.governance.models import RoleModelAccess

    deploy_services.model_create(name="staff-only-model")
    RoleModelAccess.objects.create(role="learner", model_names=["course-model"])
    client.force_login(student)
    response = client.get(f"/courses/{course.id}/assistant/")
    assert b"staff-only-model" not in response.content
