"""Shared fixtures: personas, real Redis when reachable, and the vLLM simulator.

Personas (see STYLE.md): ``lecturer`` and ``student`` share ``course``; ``outsider`` is a
learner in ``other_course``; ``admin`` is a site administrator in no course.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caipi.core.models import Course, CourseRole, Membership, SiteRole, User
from tests.support.services import postgres_in_use, redis_test_url


def pytest_report_header(config: pytest.Config) -> list[str]:
    redis_url = redis_test_url()
    return [
        "caipi database: "
        + ("PostgreSQL (DATABASE_URL)" if postgres_in_use() else "SQLite (DATABASE_URL unset)"),
        "caipi redis: "
        + (f"{redis_url}" if redis_url else "not reachable — tests marked 'redis' are skipped"),
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    redis_url = redis_test_url()
    for item in items:
        if "redis" in item.keywords and not redis_url:
            item.add_marker(pytest.mark.skip(reason="needs Redis: none reachable (set REDIS_URL)"))
        if "postgres" in item.keywords and not postgres_in_use():
            item.add_marker(
                pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgresql://...")
            )


@pytest.fixture(scope="session", autouse=True)
def _close_async_thread_connections(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Async views and tests run their ORM calls in asgiref's one sync thread, whose database
    connection would otherwise still be open when the test database is dropped."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database reserved for tests, emptied before and after each test (and
    this process's quota leases on it forgotten with it)."""
    import redis

    from caipi.governance.services import quota_leases

    url = redis_test_url()
    if not url:
        pytest.skip("needs Redis: none reachable (set REDIS_URL)")
    client = redis.Redis.from_url(url)
    client.flushdb()
    quota_leases.clear()
    yield url
    client.flushdb()
    quota_leases.clear()
    client.close()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory, settings) -> None:
    settings.CHROMA_PATH = tmp_path_factory.mktemp("chroma")
    settings.RAG_LEXICAL_PATH = tmp_path_factory.mktemp("bm25")
    # No background flusher: it would write usage outside the test's transaction. Tests that
    # check usage records call usage_flush() themselves.
    settings.GOVERNANCE_USAGE_FLUSH_SECONDS = 0


@pytest.fixture(autouse=True)
def _fresh_prompt_caches() -> Iterator[None]:
    """Row ids come back after a test's rollback: no cached template may outlive its test."""
    from prompts.cache import caches_clear

    caches_clear()
    yield
    caches_clear()


@pytest.fixture
def course(db) -> Course:
    return Course.objects.create(title="Introduction to Machine Learning", label="ML101")


@pytest.fixture
def other_course(db) -> Course:
    return Course.objects.create(title="Medieval History", label="HIST200")


def _member(username: str, course: Course, role: str, **fields: str) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **fields)
    Membership.objects.create(user=user, course=course, role=role)
    return user


@pytest.fixture
def lecturer(course: Course) -> User:
    """Alice teaches ML101."""
    return _member("alice", course, CourseRole.INSTRUCTOR, display_name="Alice Lecturer")


@pytest.fixture
def student(course: Course) -> User:
    """Bob studies in ML101."""
    return _member("bob", course, CourseRole.LEARNER, display_name="Bob Student")


@pytest.fixture
def outsider(other_course: Course) -> User:
    """Charlie studies in HIST200 and has no business in ML101."""
    return _member("charlie", other_course, CourseRole.LEARNER, display_name="Charlie Outsider")


@pytest.fixture
def admin(db) -> User:
    """Dana runs the CAIPI site."""
    return User.objects.create_user(
        username="dana",
        password="pw-dana",
        site_role=SiteRole.ADMIN,
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def simulator() -> Iterator[object]:
    """A vLLM simulator on a free port, fast enough for tests."""
    from tests.support.simulator import running_simulator

    with running_simulator(model="sim-model", ttft=0.01, tpot=0.001) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: a page a test requested in German leaves
    German active in this thread (in production each request has its own context)."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()
