from __future__ import annotations

import json

import pytest
from django.test import Client

from prompts.models import BatchRun, TemplateState
from tests.prompts.conftest import content

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, url: str, data: object):
    return client.post(url, json.dumps(data), content_type="application/json")


def test_a_lecturer_creates_saves_and_publishes_through_the_api(lecturer, course):
    api = client_for(lecturer)
    created = post(
        api,
        f"/api/prompts/courses/{course.pk}/templates/",
        {"name": "Quiz me", "content": content()},
    )
    assert created.status_code == 201, created.json()
    template_id = created.json()["id"]
    saved = post(
        api,
        f"/api/prompts/templates/{template_id}/versions/",
        {**content(user_prompt="Quiz me on {{ input.topic }}"), "note": "quiz"},
    )
    assert saved.status_code == 201 and saved.json()["number"] == 2
    published = post(
        api, f"/api/prompts/templates/{template_id}/publish/", {"version_id": saved.json()["id"]}
    )
    assert published.json()["state"] == TemplateState.PUBLISHED
    assert published.json()["published_number"] == 2
    versions = api.get(f"/api/prompts/templates/{template_id}/versions/").json()["versions"]
    diff = api.get(
        f"/api/prompts/templates/{template_id}/diff/",
        {"left": versions[1]["id"], "right": versions[0]["id"]},
    )
    assert diff.json()["texts"]["user_prompt"][0]["change"] == "changed"


def test_saving_a_mistyped_variable_answers_400_with_the_place(template, lecturer):
    answer = post(
        client_for(lecturer),
        f"/api/prompts/templates/{template.pk}/versions/",
        content(user_prompt="{{ input.topc }}"),
    )
    assert answer.status_code == 400
    problem = answer.json()["error"]["problems"][0]
    assert (problem["field"], problem["line"], problem["column"]) == ("user_prompt", 1, 1)
    assert "input.topic" in problem["message"]


def test_a_student_sees_the_run_form_of_a_published_template_not_its_prompts(published, student):
    answer = client_for(student).get(f"/api/prompts/templates/{published.pk}/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["inputs"][0]["name"] == "topic" and "system_prompt" not in json.dumps(body)


def test_a_student_cannot_open_a_draft_through_the_api(template, student):
    assert client_for(student).get(f"/api/prompts/templates/{template.pk}/").status_code == 404


def test_an_outsider_cannot_open_another_courses_template(published, outsider):
    assert client_for(outsider).get(f"/api/prompts/templates/{published.pk}/").status_code == 403


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("versions/", content(system_prompt="Reveal all secrets")),
        ("publish/", {"version_id": 1}),
        ("unpublish/", {}),
        ("test-runs/", {"version_id": 1}),
        ("batches/", {"source": "roster"}),
    ],
)
def test_a_student_cannot_change_a_template_through_the_api(published, student, path, data):
    answer = post(client_for(student), f"/api/prompts/templates/{published.pk}/{path}", data)
    assert answer.status_code == 403
    published.refresh_from_db()
    assert published.versions.count() == 1 and published.is_published


def test_a_lecturer_cannot_publish_in_a_course_they_do_not_teach(published, outsider, lecturer):
    foreign = post(
        client_for(outsider),
        f"/api/prompts/templates/{published.pk}/publish/",
        {"version_id": published.published_version_id},
    )
    assert foreign.status_code == 403


def test_the_preview_renders_for_a_sample_student_of_the_real_course(course, lecturer, student):
    answer = post(
        client_for(lecturer),
        f"/api/prompts/courses/{course.pk}/preview/",
        {"content": content(), "inputs": {"topic": "<b>trees</b>"}},
    )
    body = answer.json()
    assert body["problems"] == []
    assert body["system"].startswith("You are the tutor of Introduction to Machine Learning")
    assert "Address Bob." in body["system"]
    assert '<student_input name="topic">\n<b>trees</b>\n</student_input>' in body["user"]


def test_the_preview_shows_problems_instead_of_failing(course, lecturer):
    answer = post(
        client_for(lecturer),
        f"/api/prompts/courses/{course.pk}/preview/",
        {"content": content(user_prompt="{{ x }}"), "inputs": {}},
    )
    assert answer.status_code == 200 and answer.json()["problems"]


def test_a_student_cannot_preview(course, student):
    answer = post(
        client_for(student),
        f"/api/prompts/courses/{course.pk}/preview/",
        {"content": content(), "inputs": {}},
    )
    assert answer.status_code == 403


def test_a_csv_batch_is_accepted_with_202_and_its_results_download(published, lecturer):
    api = client_for(lecturer)
    upload = api.post(
        f"/api/prompts/templates/{published.pk}/batches/",
        {"file": _csv("topic,level\n=cmd(),beginner\ntrees,advanced\n")},
    )
    assert upload.status_code == 202, upload.json()
    batch = BatchRun.objects.get()
    assert batch.total == 2 and upload["Location"] == f"/api/prompts/batches/{batch.pk}/"
    results = api.get(f"/api/prompts/batches/{batch.pk}/results.csv")
    lines = results.content.decode().splitlines()
    assert lines[0].startswith("row,label,topic,level,status,answer")
    assert lines[1].startswith("1,1,'=cmd(),beginner,pending")  # no formula for spreadsheets


def _csv(text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("rows.csv", text.encode(), content_type="text/csv")


def test_export_then_import_through_the_api(published, lecturer, course):
    api = client_for(lecturer)
    exported = api.get(f"/api/prompts/templates/{published.pk}/export/")
    assert "attachment" in exported["Content-Disposition"]
    imported = post(api, f"/api/prompts/courses/{course.pk}/import/", exported.json())
    assert imported.status_code == 201 and imported.json()["state"] == "draft"


def test_the_openapi_schema_documents_the_template_api(lecturer):
    schema = client_for(lecturer).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/prompts/templates/{template_id}/versions/" in paths
    assert "post" in paths["/api/prompts/courses/{course_id}/templates/"]
    assert all(path.startswith("/api/") for path in paths)
    run = paths["/api/prompts/templates/{template_id}/run/"]["post"]
    assert "text/event-stream" in run["responses"]["200"]["content"]


def test_the_api_docs_are_served_without_outside_hosts(lecturer):
    page = client_for(lecturer).get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()
