"""HTML pages of the rag app: the lecturer's lecture-notes page and a cited passage."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from caipi.core.models import Course
from caipi.core.permissions import require
from rag import selectors
from rag.parsing import EXTENSIONS
from rag.permissions import COURSE_MANAGE_DOCUMENTS
from rag.sources import source_for


@login_required
@require_GET
def documents_page(request: HttpRequest, course_id: int) -> HttpResponse:
    """Upload notes (with a progress bar), see and delete documents, see what is used."""
    course = get_object_or_404(Course, pk=course_id)
    require(request.user, COURSE_MANAGE_DOCUMENTS, course)
    stats = selectors.course_stats(course=course, user=request.user)
    accept = ",".join(sorted({*EXTENSIONS, ".zip"}))
    context = {
        "course": course,
        "stats": stats,
        "accept": accept,
        "may_sync": source_for("moodle", course) is not None,
        "strings": _page_strings(),
    }
    return render(request, "rag/documents.html", context)


def _page_strings() -> dict[str, str]:
    """The documents page script's words, translated here (the script has no catalog)."""
    return {
        "uploading": _("Uploading… %(percent)s %%"),
        "queued": _("Waiting for the indexer…"),
        "indexing": _("Indexing %(name)s… %(percent)s %%"),
        "done": _("Done: %(ok)s of %(total)s files indexed or unchanged."),
        "failed": _("Indexing failed: %(error)s"),
        "lost": _("The connection was lost. Reload the page to see what was indexed."),
        "no_documents": _("No documents yet. Upload lecture notes above."),
        "delete": _("Delete"),
        "confirm_delete": _(
            "Delete “%(title)s” and its passages? The assistant will stop citing it."
        ),
        "yes": _("yes"),
        "hidden": _("no (hidden)"),
        "from": _("from %(date)s"),
        "until": _("until %(date)s"),
        "passages": _("%(count)s passages"),
        "page": _("page"),
        "indexed": _("indexed"),
        "unchanged": _("unchanged"),
        "expanded": _("archive unpacked"),
        "removed": _("removed"),
    }


@login_required
@require_GET
def passage_page(request: HttpRequest, chunk_id: int) -> HttpResponse:
    """A cited passage, highlighted between its neighbours, with the link back to the LMS."""
    chunk = selectors.chunk_get(chunk_id=chunk_id, user=request.user)
    before, after = selectors.chunk_neighbours(chunk=chunk)
    context = {
        "chunk": chunk,
        "document": chunk.document,
        "course": chunk.document.course,
        "before": before,
        "after": after,
    }
    return render(request, "rag/passage.html", context)
