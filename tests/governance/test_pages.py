"""Usage pages, CSV export, keys page and policy page: who may see what."""

from __future__ import annotations

import pytest

from caipi.core.models import User
from caipi.governance.models import ApiKey, PolicyAcceptance, PolicyVersion, QuotaLimit
from caipi.governance.services.usage import usage_flush, usage_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def some_usage(student, lecturer, course, other_course, outsider):
    for model, tokens in (("llama-8b", 300), ("qwen-32b", 900)):
        usage_record(
            user_id=student.pk,
            course_id=course.pk,
            model=model,
            prompt_tokens=tokens,
            completion_tokens=50,
        )
    usage_record(
        user_id=outsider.pk,
        course_id=other_course.pk,
        model="llama-8b",
        prompt_tokens=10,
        completion_tokens=5,
    )
    usage_flush()


def test_admins_see_site_usage_with_charts(client, admin, some_usage):
    client.force_login(admin)
    page = client.get("/usage/").content.decode()
    assert page.count("<svg") == 4
    assert 'data-label="qwen-32b" data-value="950.0"' in page
    assert 'data-label="HIST200"' in page and 'data-label="learner"' in page


def test_lecturers_see_their_course_only(client, lecturer, course, other_course, some_usage):
    client.force_login(lecturer)
    page = client.get(f"/courses/{course.pk}/usage/").content.decode()
    assert 'data-label="qwen-32b"' in page and "HIST200" not in page
    assert client.get(f"/courses/{other_course.pk}/usage/").status_code == 403
    assert client.get("/usage/").status_code == 403


def test_students_see_no_usage_pages(client, student, course, some_usage):
    client.force_login(student)
    assert client.get(f"/courses/{course.pk}/usage/").status_code == 403
    assert client.get(f"/usage/export.csv?course={course.pk}").status_code == 403


def test_csv_export_holds_the_courses_records_and_no_text(client, lecturer, course, some_usage):
    client.force_login(lecturer)
    answer = client.get(f"/usage/export.csv?course={course.pk}")
    lines = answer.content.decode().strip().splitlines()
    assert answer["Content-Type"] == "text/csv" and len(lines) == 3
    assert lines[0].startswith("created_at,user_id,course_id,role,model")
    assert client.get("/usage/export.csv").status_code == 403


def test_the_keys_page_shows_a_new_key_once(client, settings, student):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["member"]
    client.force_login(student)
    page = client.post("/keys/", {"name": "laptop"}).content.decode()
    assert 'id="new-key">caipi-' in page
    assert 'id="new-key"' not in client.get("/keys/").content.decode()


def test_pages_send_users_to_the_policy_first_and_back(client, admin, student, course):
    PolicyVersion.objects.create(version=1, text="Be kind.", published_by=admin)
    client.force_login(student)
    answer = client.get("/keys/")
    assert answer.status_code == 302 and answer["Location"].startswith("/policy/?next=")
    accepted = client.post("/policy/", {"next": "/keys/"})
    assert accepted["Location"] == "/keys/"
    assert PolicyAcceptance.objects.filter(user=student, policy__version=1).exists()
    assert client.get("/keys/").status_code == 200


def test_the_students_usage_policy_does_not_stop_staff_from_staff_pages(
    client, admin, lecturer, course, some_usage
):
    PolicyVersion.objects.create(version=1, text="Be kind.", published_by=admin)
    client.force_login(lecturer)
    assert client.get(f"/courses/{course.pk}/usage/").status_code == 200
    assert client.get(f"/usage/export.csv?course={course.pk}").status_code == 200
    client.force_login(admin)
    assert client.get("/usage/").status_code == 200
    assert not PolicyAcceptance.objects.exists()


def _day_chart(page: str) -> str:
    chart = page[page.index('<section id="by-day">') :]
    return chart[: chart.index("</section>")]


def _ticks(page: str) -> list[str]:
    import re

    return re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', _day_chart(page))


def test_the_usage_chart_axis_spans_the_period_with_distinct_dates(client, lecturer, course):
    from django.utils import timezone

    usage_record(user_id=lecturer.pk, course_id=course.pk, model="m", prompt_tokens=5)
    usage_flush()
    client.force_login(lecturer)
    page = client.get(f"/courses/{course.pk}/usage/?days=30").content.decode()
    ticks = _ticks(page)
    today = timezone.localdate()
    assert ticks[0] == (today - timezone.timedelta(days=29)).isoformat()
    assert ticks[-1] == today.isoformat()
    assert len(ticks) == len(set(ticks)) and 3 <= len(ticks) <= 6
    assert _day_chart(page).count('class="bar"') == 30


def test_a_one_day_usage_chart_labels_its_day_once(client, lecturer, course):
    usage_record(user_id=lecturer.pk, course_id=course.pk, model="m", prompt_tokens=5)
    usage_flush()
    client.force_login(lecturer)
    page = client.get(f"/courses/{course.pk}/usage/?days=1").content.decode()
    assert len(_ticks(page)) == 1

    assert client.post("/policy/", {"next": "https://evil.example/"})["Location"] == "/"


def test_the_keys_page_says_which_limits_hold_key_calls(client, student, course):
    QuotaLimit.objects.create(
        scope="role", role="learner", metric="requests", window="day", size=10
    )
    client.force_login(student)
    page = client.get("/keys/").content.decode()
    assert "The same quotas apply as in your courses" not in page
    assert "strictest one applies" in page
    assert "learner requests per day" in page  # Bob's learner limit holds his keys


def test_a_student_is_told_the_administrator_has_not_allowed_own_keys(client, settings, student):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["api_user", "admin"]
    client.force_login(student)
    page = client.get("/keys/").content.decode()
    assert 'id="no-self-service"' in page and "Member" in page
    assert "Create a key" not in page
    assert client.post("/keys/", {"name": "laptop"}).status_code == 200
    assert not ApiKey.objects.filter(user=student).exists()


def test_students_create_their_own_keys_where_the_administrator_allows_it(
    client, settings, student
):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["member", "api_user", "admin"]
    client.force_login(student)
    assert "Create a key" in client.get("/keys/").content.decode()
    client.post("/keys/", {"name": "laptop"})
    assert ApiKey.objects.filter(user=student, name="laptop").exists()


def test_the_keys_page_speaks_german_to_a_user_who_chose_german(client, settings, student):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["api_user", "admin"]
    User.objects.filter(pk=student.pk).update(language="de")
    client.force_login(student)
    page = client.get("/keys/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Ihre API-Schlüssel" in page and "Grenzen für Aufrufe mit Ihren Schlüsseln" in page
    assert "(Mitglied)" in page  # the site role, in the sentence that refuses own keys
    assert "Your API keys" not in page and "cannot create their own keys" not in page


def test_a_refused_key_is_explained_in_the_users_language(client, settings, student):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["member"]
    User.objects.filter(pk=student.pk).update(language="de")
    client.force_login(student)
    page = client.post("/keys/", {"name": "laptop", "expires_days": "0"}).content.decode()
    assert "Die Gültigkeit muss mindestens einen Tag betragen." in page
    assert not ApiKey.objects.filter(user=student).exists()
