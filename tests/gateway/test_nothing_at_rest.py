"""Nothing a user typed is at rest by default (issue 9, item 8).

One unique string is sent through every path that carries what users type — /v1, the
course chat, a queued job, a template run and a template batch run — in a course that
keeps no history. Once each has ended, its owner has fetched what it may, and the
retention tasks have run, the string is in no table of the database, no key or value of
Redis, and no log record.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import orjson
import pytest
import redis
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from caipi.core.redis import reset_clients
from caipi.gateway import tasks as gateway_tasks
from caipi.gateway.models import Job, JobStatus
from caipi.governance.services.usage import usage_flush
from prompts import services as prompt_services
from prompts import tasks as prompt_tasks
from prompts.models import BatchRun
from tests.gateway.conftest import add_model
from tests.prompts.conftest import content

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def on_redis(redis_url: str, settings) -> str:
    settings.REDIS_URL = redis_url
    reset_clients()
    yield redis_url
    reset_clients()


@pytest.fixture(autouse=True)
def _tasks_run_here(monkeypatch):
    from caipi.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


@pytest.fixture
def published(transactional_db, shared_simulator, lecturer, course):
    add_model("tutor", shared_simulator.url)
    template = prompt_services.template_create(
        actor=lecturer, course=course, name="Explain", content=content()
    )
    return prompt_services.template_publish(
        actor=lecturer, template=template, version=template.versions.get()
    )


def tables_holding(marker: str) -> list[str]:
    """Every table with a row whose text (all columns, JSON included) contains ``marker``."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT 1 FROM "{table}" t WHERE t::text LIKE %s LIMIT 1', [marker])
            if cursor.fetchone():
                found.append(table)
    return found


def redis_holding(url: str, marker: str) -> list[bytes]:
    """Every key of the test Redis whose name or value contains ``marker``."""
    client = redis.Redis.from_url(url)
    readers = {
        b"string": client.get,
        b"hash": client.hgetall,
        b"list": lambda key: client.lrange(key, 0, -1),
        b"set": client.smembers,
        b"zset": lambda key: client.zrange(key, 0, -1),
        b"stream": lambda key: client.xrange(key),
    }
    wanted = marker.encode()
    found = []
    for key in client.scan_iter(count=1000):
        value = readers.get(client.type(key), lambda key: b"")(key)
        if wanted in key or wanted in repr(value).encode():
            found.append(key)
    return found


def _in_own_thread(work):
    """Run ``work`` in a worker thread (eager tasks start their own event loop, which the
    async views' thread cannot host) and close that thread's database connections after,
    so no session outlives the test."""

    def run(*args):
        try:
            return work(*args)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=False)


def _job(user, course, marker: str) -> Job:
    client = Client()
    client.force_login(user)
    question = {"messages": [{"role": "user", "content": f"Define {marker}."}], "max_tokens": 4}
    body = {"model": "tutor", "requests": [question] * 2, "course_id": course.pk}
    response = client.post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 202, response.content
    status = client.get(response["Location"]).json()  # the owner fetches the results
    assert status["status"] == JobStatus.SUCCEEDED and len(status["results"]) == 2
    return Job.objects.get(pk=status["id"])


def _batch(lecturer, template, marker: str) -> None:
    version = template.versions.get()
    batch = prompt_services.batch_create(
        actor=lecturer, template=template, version=version, source="csv",
        rows=[{"topic": f"{marker} one"}, {"topic": f"{marker} two"}],
    )  # fmt: skip
    BatchRun.objects.filter(pk=batch.pk).update(purge_after=timezone.now() - timedelta(1))


async def test_a_string_sent_through_every_path_is_nowhere_at_rest(
    v1, async_client, student, lecturer, course, published, on_redis, caplog, settings
):
    caplog.set_level(logging.DEBUG)
    marker = f"zq{uuid.uuid4().hex}"
    question = {"role": "user", "content": f"What does {marker} mean?"}

    answer = await v1.post(
        "/v1/chat/completions", json={"model": "tutor", "messages": [question], "max_tokens": 3}
    )
    assert answer.status_code == 200, answer.text

    await async_client.aforce_login(student)
    chat = {"model": "tutor", "messages": [question], "max_tokens": 3, "course_id": course.pk}
    answer = await async_client.post(
        "/api/chat/", orjson.dumps(chat), content_type="application/json"
    )
    assert answer.status_code == 200
    assert b"[DONE]" in b"".join([chunk async for chunk in answer.streaming_content])

    run = orjson.dumps({"inputs": {"topic": marker}})
    answer = await async_client.post(
        f"/api/prompts/templates/{published.pk}/run/", run, content_type="application/json"
    )
    assert answer.status_code == 200
    assert b"[DONE]" in b"".join([chunk async for chunk in answer.streaming_content])

    # Eager tasks run their own event loop: not in the thread async views use.
    job = await _in_own_thread(_job)(student, course, marker)
    await _in_own_thread(_batch)(lecturer, published, marker)

    settings.GATEWAY_JOB_RESULT_HOURS = 0
    await sync_to_async(gateway_tasks.jobs_purge_expired)()
    await sync_to_async(prompt_tasks.batches_purge_expired)()
    await sync_to_async(usage_flush)()

    assert await sync_to_async(tables_holding)(marker) == []
    assert await sync_to_async(redis_holding)(on_redis, marker) == []
    assert marker not in caplog.text
    job = await sync_to_async(Job.objects.get)(pk=job.pk)
    assert (job.total, job.done, job.results, job.requests) == (2, 2, [], [])


@pytest.fixture
def _usage_written_before_the_rows_go(transactional_db):
    """The job's usage records are buffered: write them while their course still exists."""
    yield
    usage_flush()


def test_a_jobs_inputs_go_when_it_ends_and_its_results_after_the_retention(
    _usage_written_before_the_rows_go, shared_simulator, student, course, settings
):
    add_model("tutor", shared_simulator.url)
    job = _job(student, course, "entropy")
    assert job.requests == [] and len(job.results) == 2  # inputs gone at once
    gateway_tasks.jobs_purge_expired()
    job.refresh_from_db()
    assert len(job.results) == 2  # still fetchable within GATEWAY_JOB_RESULT_HOURS
    Job.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - timedelta(hours=settings.GATEWAY_JOB_RESULT_HOURS + 1)
    )
    gateway_tasks.jobs_purge_expired()
    job.refresh_from_db()
    assert job.results == [] and job.status == JobStatus.SUCCEEDED
