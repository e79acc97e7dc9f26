"""Writes of runs: a student's run record, test runs and batch runs with their progress.

Queued work (test runs, batch runs) is created here and handed on after commit to the
runner the gateway registered (``prompts.registry``); the runner claims it with
``*_claim`` (a conditional update, so two workers never run the same row), records each
result and finishes it.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caipi.core.errors import ApplicationError
from caipi.core.models import CourseRole, Membership
from prompts import registry
from prompts.models import (
    BatchItem,
    BatchItemStatus,
    BatchRun,
    BatchSource,
    BatchStatus,
    Run,
    Template,
    TemplateVersion,
    TestCase,
    TestResult,
    TestRun,
    TestRunStatus,
)
from prompts.services.templates import require_template_edit
from prompts.variables import InputSpec, Problem, TemplateInvalid, inputs_clean, schema_parse

MAX_BATCH_ROWS = 500
MAX_CSV_BYTES = 2_000_000


def specs_of(version: TemplateVersion) -> list[InputSpec]:
    """The version's declared inputs (stored valid, so parsing finds no problem)."""
    return schema_parse(version.variables)[0]


# --- student runs ------------------------------------------------------------------------


def run_record(
    *, template: Template, version: TemplateVersion, user_id: int | None, inputs: dict[str, Any],
    keep_history: bool,
) -> Run:  # fmt: skip
    """Record that ``user`` ran ``version``; the inputs only when the course keeps history."""
    return Run.objects.create(
        template=template,
        version=version,
        course=template.home,
        user_id=user_id,
        inputs=inputs if keep_history else None,
    )


def run_keep_answer(*, run_id: int, answer: str) -> None:
    """Keep a run's answer (call only for courses that keep history)."""
    Run.objects.filter(pk=run_id).update(answer=answer)


# --- test runs ---------------------------------------------------------------------------


@transaction.atomic
def testrun_create(*, actor: Any, version: TemplateVersion) -> TestRun:
    """Queue a run of the version's test cases; the runner starts after commit."""
    require_template_edit(actor, version.template)
    total = version.tests.count()
    if total == 0:
        raise ApplicationError(str(_("Add a test case first.")))
    run = TestRun.objects.create(version=version, started_by=actor, total=total)
    transaction.on_commit(lambda: registry.enqueue(registry.TEST_RUN, run.pk))
    return run


def testrun_claim(*, run_id: int) -> bool:
    """Mark a queued test run running; False when another worker has it or it ended."""
    claimed = TestRun.objects.filter(pk=run_id, status=TestRunStatus.QUEUED).update(
        status=TestRunStatus.RUNNING
    )
    return claimed == 1


def testresult_record(
    *, run: TestRun, case: TestCase, answer: str, checks: list[dict[str, Any]], error: str = ""
) -> TestResult:
    """Keep one case's answer and check results, and count it in the run's progress."""
    passed = not error and all(check["passed"] for check in checks)
    result = TestResult.objects.create(
        run=run,
        case=case,
        case_name=case.name,
        answer=answer,
        checks=checks,
        passed=passed,
        error=error[:2000],
    )
    TestRun.objects.filter(pk=run.pk).update(
        done=F("done") + 1, passed=F("passed") + (1 if passed else 0)
    )
    return result


def testrun_finish(*, run: TestRun, error: str = "") -> TestRun:
    """Close the run: passed when every case passed, failed otherwise, error if it broke."""
    run.refresh_from_db()
    if error:
        run.status = TestRunStatus.ERROR
    else:
        green = run.passed == run.total and run.done == run.total
        run.status = TestRunStatus.PASSED if green else TestRunStatus.FAILED
    run.error, run.finished_at = error[:2000], timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    return run


# --- batch runs --------------------------------------------------------------------------


def batch_rows_from_csv(text: str, specs: list[InputSpec]) -> list[dict[str, Any]]:
    """The rows of a CSV whose header names the template's inputs, as input dicts.

    Refuses (TemplateInvalid, naming the row or column) unknown columns, more than
    MAX_BATCH_ROWS rows and files over MAX_CSV_BYTES. Yes/no columns accept yes/no, true/
    false, ja/nein, 1/0.
    """
    if len(text.encode()) > MAX_CSV_BYTES:
        raise TemplateInvalid(str(_("The CSV file is too large.")), [])
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    known = {spec.name: spec for spec in specs}
    columns = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in columns if c not in known]
    if not columns or unknown:
        problems = [Problem(f"csv.{c}"[:80], _("No input has this name.")) for c in unknown]
        message = _("The first line must name the template's inputs: %(names)s.")
        raise TemplateInvalid(str(message % {"names": ", ".join(known) or "—"}), problems)
    rows = []
    for index, row in enumerate(reader):
        if index >= MAX_BATCH_ROWS:
            raise TemplateInvalid(str(_("At most %(n)s rows.") % {"n": MAX_BATCH_ROWS}), [])
        rows.append({k.strip(): _cell(known[k.strip()], v) for k, v in row.items() if k})
    return rows


def _cell(spec: InputSpec, value: str | None) -> Any:
    value = (value or "").strip()
    if spec.kind == "yes_no" and value:
        lowered = value.casefold()
        if lowered in {"yes", "true", "1", "ja", "y", "j"}:
            return True
        if lowered in {"no", "false", "0", "nein", "n"}:
            return False
    return value


def _rows_checked(specs: list[InputSpec], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned, problems = [], []
    for number, row in enumerate(rows, start=1):
        try:
            cleaned.append(inputs_clean(specs, row))
        except TemplateInvalid as exc:
            problems += [Problem(f"rows[{number}].{p.field}", p.message) for p in exc.problems]
    if problems:
        raise TemplateInvalid(str(_("Some rows need another look.")), problems[:50])
    return cleaned


def _retention() -> timedelta:
    return timedelta(hours=getattr(settings, "PROMPTS_BATCH_RETENTION_HOURS", 24))


@transaction.atomic
def batch_create(
    *, actor: Any, template: Template, version: TemplateVersion, source: str,
    rows: list[dict[str, Any]] | None = None,
) -> BatchRun:  # fmt: skip
    """Queue a batch run of ``version`` over CSV ``rows`` or the course's students.

    Roster batches give every student the inputs' defaults and run with the student as
    ``user`` (their name and role fill the user variables). Raises PermissionDenied,
    TemplateInvalid (rows naming their problems) or ApplicationError (nothing to run).
    """
    require_template_edit(actor, template)
    if version.template_id != template.pk or template.course_id is None:
        raise ApplicationError(str(_("Batch runs need a version of a course template.")))
    specs = specs_of(version)
    users: list[Any] = []
    if source == BatchSource.ROSTER:
        members = Membership.objects.filter(course_id=template.course_id, role=CourseRole.LEARNER)
        users = [m.user for m in members.select_related("user").order_by("user__username")]
        rows = [{} for _ in users]
    cleaned = _rows_checked(specs, rows or [])
    if not cleaned or len(cleaned) > MAX_BATCH_ROWS:
        raise ApplicationError(str(_("Give 1 to %(n)s rows.") % {"n": MAX_BATCH_ROWS}))
    batch = BatchRun.objects.create(
        template=template,
        version=version,
        course_id=template.course_id,
        created_by=actor,
        source=source,
        total=len(cleaned),
    )
    BatchItem.objects.bulk_create(
        BatchItem(
            batch=batch,
            position=index,
            inputs=inputs,
            user=users[index] if users else None,
            label=str(users[index]) if users else str(index + 1),
        )
        for index, inputs in enumerate(cleaned)
    )
    transaction.on_commit(lambda: registry.enqueue(registry.BATCH_RUN, batch.pk))
    return batch


def batch_cancel(*, actor: Any, batch: BatchRun) -> BatchRun:
    """Stop a batch: items not yet run stay pending and are not run."""
    require_template_edit(actor, batch.template)
    BatchRun.objects.filter(
        pk=batch.pk, status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING]
    ).update(status=BatchStatus.CANCELLED, finished_at=timezone.now(), purge_after=_purge_at())
    batch.refresh_from_db()
    return batch


def _purge_at() -> Any:
    return timezone.now() + _retention()


def batch_claim(*, batch_id: int) -> bool:
    """Mark a queued batch running; False when another worker has it, or it was cancelled."""
    claimed = BatchRun.objects.filter(pk=batch_id, status=BatchStatus.QUEUED).update(
        status=BatchStatus.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


def batch_is_cancelled(*, batch_id: int) -> bool:
    return BatchRun.objects.filter(pk=batch_id, status=BatchStatus.CANCELLED).exists()


def batch_item_record(
    *, item: BatchItem, answer: str = "", error: str = "", prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> None:  # fmt: skip
    """Keep one item's answer (or error) and count it in the batch's progress."""
    failed = bool(error)
    BatchItem.objects.filter(pk=item.pk).update(
        status=BatchItemStatus.FAILED if failed else BatchItemStatus.DONE,
        answer=answer,
        error=error[:2000],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    BatchRun.objects.filter(pk=item.batch_id).update(
        done=F("done") + 1, failed=F("failed") + (1 if failed else 0)
    )


def batch_finish(*, batch_id: int, error: str = "") -> None:
    """Close a running batch (a cancelled one stays cancelled) and start its retention."""
    BatchRun.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).update(
        status=BatchStatus.FAILED if error else BatchStatus.SUCCEEDED,
        error=error[:2000],
        finished_at=timezone.now(),
        purge_after=_purge_at(),
    )


def batches_purge_expired() -> int:
    """Delete the items (inputs and answers) of batches past their retention; the batch
    row stays with its counts. Returns how many items were deleted."""
    expired = BatchRun.objects.filter(purge_after__lte=timezone.now())
    deleted, _counts = BatchItem.objects.filter(batch__in=expired).delete()
    return deleted
