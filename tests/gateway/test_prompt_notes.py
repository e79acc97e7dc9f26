"""Templates that opt into lecture-note retrieval get the passages as their variable, and the
run carries numbered citations, as the course assistant's answers do."""

from __future__ import annotations

import pytest

from caipi.gateway.prompt_notes import notes_query
from caipi.gateway.prompt_runs import run_prepare
from prompts import services
from tests.prompts.conftest import content, tutor_model  # noqa: F401 (fixture)
from tests.rag.conftest import NOTES_DIR, ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tutor_model")]
QUESTION = "who defined machine learning, according to the week 1 notes?"


@pytest.fixture
def notes(course):
    return [ingest(course, p.name, p.read_bytes()).document for p in sorted(NOTES_DIR.glob("*.md"))]


def _published(lecturer, course, **changes):
    template = services.template_create(
        actor=lecturer, course=course, name="Ask the notes", content=content(**changes)
    )
    services.template_publish(actor=lecturer, template=template, version=template.versions.get())
    return template


NOTES_TEMPLATE = {
    "use_notes": True,
    "notes_count": 3,
    "user_prompt": "Answer {{ input.topic }} from these notes, citing [n]:\n{{ passages }}",
}


def test_a_template_with_notes_gets_the_passages_and_their_citations(
    lecturer, student, course, notes
):
    template = _published(lecturer, course, **NOTES_TEMPLATE)
    prepared = run_prepare(
        user=student, template_id=template.pk, payload={"inputs": {"topic": QUESTION}}
    )
    prompt = prepared.body["messages"][-1]["content"]
    assert '<passage n="1" source="Week 1' in prompt or '<passage n="1"' in prompt
    numbers = [c["number"] for c in prepared.citations]
    assert numbers == list(range(1, len(numbers) + 1)) and 1 <= len(numbers) <= 3
    cited = [c for c in prepared.citations if "Tom Mitchell" in c["quote"]]
    assert cited and cited[0]["document"].startswith("Week 1")
    assert cited[0]["url"].startswith("/") and f'<passage n="{cited[0]["number"]}"' in prompt


def test_a_template_without_notes_gets_no_passages_and_no_citations(
    lecturer, student, course, notes
):
    template = _published(lecturer, course)
    prepared = run_prepare(
        user=student, template_id=template.pk, payload={"inputs": {"topic": QUESTION}}
    )
    assert prepared.citations == ()
    assert "<passage" not in prepared.body["messages"][-1]["content"]


def test_a_hidden_document_is_never_cited_to_a_student(lecturer, student, course, notes):
    from rag.models import Document

    Document.objects.filter(title__startswith="Week 1").update(visible=False)
    template = _published(lecturer, course, **NOTES_TEMPLATE)
    prepared = run_prepare(
        user=student, template_id=template.pk, payload={"inputs": {"topic": QUESTION}}
    )
    assert not any(c["document"].startswith("Week 1") for c in prepared.citations)
    assert "Tom Mitchell" not in prepared.body["messages"][-1]["content"]


def test_passages_text_is_inserted_as_data_not_template_source(lecturer, student, course):
    ingest(
        course, "tricky.md", b"# Tricky\n\nThe {{ user.given_name }} trick </passage> ends here."
    )
    template = _published(lecturer, course, **NOTES_TEMPLATE)
    prepared = run_prepare(
        user=student, template_id=template.pk, payload={"inputs": {"topic": "the tricky trick"}}
    )
    prompt = prepared.body["messages"][-1]["content"]
    assert prepared.citations, "the tricky note should be found"
    assert "The {{ user.given_name }} trick" in prompt  # literally, not rendered
    assert prompt.count("</passage>") == len(prepared.citations)  # its own one is defused


def test_the_search_uses_the_students_text_inputs():
    assert notes_query({"topic": " overfitting ", "level": "beginner", "n": 3, "ok": True}) == (
        "overfitting\nbeginner"
    )
