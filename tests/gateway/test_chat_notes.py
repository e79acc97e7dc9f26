"""The course chat answers from the lecture notes with citations, and says when they don't know."""

from __future__ import annotations

import orjson
import pytest
from asgiref.sync import sync_to_async

from rag.models import Document, QuestionDay, UnansweredQuestion
from tests.gateway.conftest import add_model
from tests.rag.conftest import NOTES_DIR, ingest

pytestmark = pytest.mark.usefixtures("_gateway_loop_cleanup")

WEEK1_QUESTION = "who defined machine learning, according to the week 1 notes?"


@pytest.fixture
def tutor(transactional_db, shared_simulator):
    return add_model("tutor", shared_simulator.url)


@pytest.fixture
def notes(transactional_db, course):
    return [ingest(course, p.name, p.read_bytes()).document for p in sorted(NOTES_DIR.glob("*.md"))]


def _body(course_id, *questions):
    messages = []
    for question in questions:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": "…"}]
    body = {"model": "tutor", "messages": messages[:-1], "max_tokens": 8, "course_id": course_id}
    return orjson.dumps(body)


def _events(raw: bytes) -> list[dict]:
    return [
        orjson.loads(line[6:])
        for line in raw.split(b"\n")
        if line.startswith(b"data: ") and line != b"data: [DONE]"
    ]


async def _ask(client, course, *questions):
    response = await client.post(
        "/api/chat/", _body(course.pk, *questions), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return _events(b"".join([chunk async for chunk in response.streaming_content]))


async def test_an_answer_from_the_notes_streams_with_numbered_citations(
    async_client, student, course, tutor, notes, sent_upstream
):
    await async_client.aforce_login(student)
    events = await _ask(async_client, course, WEEK1_QUESTION)
    citations = events[0]["caipi_citations"]
    assert [c["number"] for c in citations] == list(range(1, len(citations) + 1))
    cited = [c for c in citations if "Tom Mitchell" in c["quote"]]
    assert cited and cited[0]["document"].startswith("Week 1")
    assert cited[0]["url"] == f"/passages/{cited[0]['chunk_id']}/"
    usage = next(e["usage"] for e in events if e.get("usage"))
    assert usage["prompt_tokens"] > 60  # the passages went to the model with the question
    assert sent_upstream() == 1
    day = await sync_to_async(QuestionDay.objects.get)(course=course)
    assert (day.asked, day.unanswered) == (1, 0)
    week1 = await sync_to_async(Document.objects.get)(week=1)
    assert week1.citations == 1


async def test_a_question_the_notes_cannot_answer_is_told_so_without_asking_a_model(
    async_client, student, course, tutor, notes, sent_upstream
):
    await async_client.aforce_login(student)
    events = await _ask(async_client, course, "What is the capital of Australia?")
    assert events[0] == {"caipi_notes": "no_answer", "caipi_citations": []}
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[1:])
    assert "do not contain an answer" in text
    assert sent_upstream() == 0
    day = await sync_to_async(QuestionDay.objects.get)(course=course)
    assert (day.asked, day.unanswered) == (1, 1)
    assert not await sync_to_async(UnansweredQuestion.objects.exists)()


async def test_unanswered_questions_are_kept_only_where_the_course_keeps_history(
    async_client, student, course, tutor, notes
):
    from caipi.governance.models import CourseSettings

    await sync_to_async(CourseSettings.objects.create)(
        course=course, keep_conversations=True, retention_days=7
    )
    await async_client.aforce_login(student)
    await _ask(async_client, course, "What is the capital of Australia?")
    kept = await sync_to_async(UnansweredQuestion.objects.get)(course=course)
    assert kept.text == "What is the capital of Australia?"
    assert (kept.expires_at - kept.asked_at).days in (6, 7)


async def test_a_student_is_not_answered_from_a_hidden_document(
    async_client, student, course, tutor, notes
):
    await sync_to_async(Document.objects.filter(week=1).update)(visible=False)
    await async_client.aforce_login(student)
    events = await _ask(async_client, course, WEEK1_QUESTION)
    quotes = [c["quote"] for c in events[0].get("caipi_citations", [])]
    assert not any("Tom Mitchell" in q for q in quotes)


async def test_a_course_without_notes_says_the_answer_is_not_from_the_course(
    async_client, student, course, tutor, sent_upstream
):
    await async_client.aforce_login(student)
    events = await _ask(async_client, course, WEEK1_QUESTION)
    assert events[0] == {"caipi_notes": "none"}
    assert sent_upstream() == 1
    assert not await sync_to_async(QuestionDay.objects.exists)()


async def test_a_follow_up_is_searched_with_the_question_before_it(
    async_client, student, course, tutor, notes
):
    await async_client.aforce_login(student)
    events = await _ask(
        async_client, course, "What is k-fold cross-validation?", "How many times does it train?"
    )
    assert any("cross-validation" in c["quote"] for c in events[0]["caipi_citations"])


async def test_with_rewriting_on_a_follow_up_costs_one_short_call_first(
    async_client, student, course, tutor, notes, sent_upstream, settings
):
    settings.RAG_REWRITE_FOLLOW_UPS = True
    await async_client.aforce_login(student)
    events = await _ask(
        async_client, course, "What is k-fold cross-validation?", "How many times does it train?"
    )
    answered = "caipi_citations" in events[0] and events[0]["caipi_citations"]
    # The simulator's rewrite is made-up words: the search may or may not find passages.
    assert sent_upstream() == (2 if answered else 1)


# --- re-ranking by a reranker the admin set up (vLLM's /v1/rerank; the simulator scores
# --- documents by the share of the question's words they contain)


@pytest.fixture
def reranker(transactional_db, shared_simulator):
    return add_model("reranker", shared_simulator.url, kind="rerank")


async def test_an_uncertain_ranking_is_reranked_through_the_relay_and_charged(
    async_client, student, course, tutor, reranker, notes, sent_upstream
):
    from caipi.governance.models import UsageRecord
    from caipi.governance.services.usage import usage_flush

    await async_client.aforce_login(student)
    # Dense and lexical search disagree on the best passage for this one.
    events = await _ask(async_client, course, WEEK1_QUESTION)
    assert any("Tom Mitchell" in c["quote"] for c in events[0]["caipi_citations"])
    assert sent_upstream() == 2  # the reranker, then the chat model
    await sync_to_async(usage_flush)()
    used = await sync_to_async(
        lambda: sorted(UsageRecord.objects.filter(user=student).values_list("model", flat=True))
    )()
    assert used == ["reranker", "tutor"]


async def test_a_clear_top_answer_is_not_sent_to_the_reranker(
    async_client, student, course, tutor, reranker, notes, sent_upstream
):
    await async_client.aforce_login(student)
    # Dense and lexical search agree, and the best passage leads clearly.
    events = await _ask(async_client, course, "What does L2 regularisation do?")
    assert events[0]["caipi_citations"]
    assert sent_upstream() == 1  # only the chat model


async def test_a_disabled_reranker_is_not_asked(
    async_client, student, course, tutor, reranker, notes, sent_upstream
):
    from caipi.gateway.catalog import catalog
    from caipi.gateway.notes import rerank_model
    from caipi.governance.principal import aprincipal_for_user

    await async_client.aforce_login(student)
    principal = await aprincipal_for_user(user_id=student.pk, course_id=course.pk)
    assert rerank_model(principal) == "reranker"
    reranker.enabled = False  # the admin switches it off
    await sync_to_async(reranker.save)()
    await sync_to_async(catalog().reload)()
    assert rerank_model(principal) is None
    await _ask(async_client, course, WEEK1_QUESTION)
    assert sent_upstream() == 1
