"""``manage.py rag ingest|search|reindex|stats``: lecture notes from the command line (admins).

    python manage.py rag ingest --course ML101 [--create] notes/ slides.pdf archive.zip
    python manage.py rag search --course ML101 "who defined machine learning?" --k 5 --json
    python manage.py rag reindex --course ML101
    python manage.py rag stats --course ML101

``--course`` takes a course id or its label; ``--create`` makes an empty course with that
label when there is none. The shell user is trusted: searches run with staff visibility.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from caipi.core.models import Course, SiteRole, User
from rag import retrieval, selectors, services
from rag.models import FileStatus
from rag.parsing import is_archive, kind_for


class Command(BaseCommand):
    help = "Ingest, search, re-index and count a course's lecture notes."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        ingest = commands.add_parser("ingest", help="Index files or folders into a course.")
        ingest.add_argument("--course", required=True, help="Course id or label.")
        ingest.add_argument("--create", action="store_true", help="Create the course if missing.")
        ingest.add_argument("paths", nargs="+", type=Path)
        search = commands.add_parser("search", help="Search a course's notes.")
        search.add_argument("--course", required=True)
        search.add_argument("question")
        search.add_argument("--k", type=int, default=5)
        search.add_argument("--json", action="store_true", help="Print JSON.")
        for name, text in (("reindex", "Re-embed every passage."), ("stats", "Show counts.")):
            sub = commands.add_parser(name, help=text)
            sub.add_argument("--course", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        course = self._course(options["course"], create=options.get("create", False))
        getattr(self, f"_{options['action']}")(course, options)

    def _course(self, ref: str, *, create: bool) -> Course:
        course = selectors.course_find(ref=ref)
        if course is None and create:
            if ref.isdigit():
                raise CommandError("--create needs a label, not a number.")
            course = Course.objects.create(label=ref, title=ref)
            self.stdout.write(f"created course {course.pk} ({ref})")
        if course is None:
            raise CommandError(f"No course '{ref}' (give its id or label, or add --create).")
        return course

    def _ingest(self, course: Course, options: dict[str, Any]) -> None:
        uploads = []
        for path in self._files(options["paths"]):
            uploads.append(services.Upload(name=path.name, data=path.read_bytes()))
        if not uploads:
            raise CommandError("No readable files given.")
        job = services.documents_ingest_now(course=course, files=uploads)
        failed = 0
        for file in job.files.all():
            line = f"{file.get_status_display():18} {file.name}"
            if file.status == FileStatus.FAILED:
                failed += 1
                line += f": {file.error}"
            elif file.document is not None:
                line += f" ({file.document.chunk_count} passages)"
            self.stdout.write(line)
        if job.error:
            raise CommandError(job.error)
        self.stdout.write(f"{len(uploads) - failed} of {len(uploads)} files indexed or unchanged")

    def _files(self, paths: list[Path]) -> list[Path]:
        found = []
        for path in paths:
            if path.is_dir():
                found += sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and (kind_for(p.name) or is_archive(p.name))
                )
            elif path.is_file():
                found.append(path)
            else:
                raise CommandError(f"{path} does not exist.")
        return found

    def _search(self, course: Course, options: dict[str, Any]) -> None:
        result = retrieval.passages_search(
            course=course, user=_shell_user(), query=options["question"], k=options["k"]
        )
        if options["json"]:
            answer = {
                "query": result.query,
                "answered": result.answered,
                "passages": [p.as_dict() for p in result.passages],
            }
            self.stdout.write(json.dumps(answer, ensure_ascii=False, indent=2))
            return
        if not result.passages:
            self.stdout.write("The notes do not answer this question.")
        for rank, p in enumerate(result.passages, start=1):
            where = f"p. {p.page}" if p.page else ""
            self.stdout.write(
                f"[{rank}] {p.similarity:.3f} {p.document_title} {where} — {p.heading}"
            )
            self.stdout.write(f"    {p.text[:200]}")

    def _reindex(self, course: Course, options: dict[str, Any]) -> None:
        count = services.course_reindex(course=course)
        self.stdout.write(f"re-embedded {count} passages of {course}")

    def _stats(self, course: Course, options: dict[str, Any]) -> None:
        stats = selectors.course_stats(course=course, user=_shell_user())
        self.stdout.write(
            f"{course}: {stats.documents} documents, {stats.chunks} passages, "
            f"model {stats.embedding_model or '-'}, index version {stats.index_version}\n"
            f"last 30 days: {stats.asked_30d} questions, {stats.unanswered_30d} unanswered"
        )
        for document in stats.most_cited:
            self.stdout.write(f"  cited {document.citations:5} times: {document.title}")


def _shell_user() -> User:
    """The shell's identity: an unsaved site admin (the shell is trusted)."""
    return User(username="manage.py", site_role=SiteRole.ADMIN, is_active=True)
