"""The actions of the rag app, as ``caipi.core.permissions`` knows them.

Every rag module asks ``can``/``require`` with these names: ``document.view`` (course
members: search and read documents visible to them), ``document.manage`` (staff: see
hidden documents, delete) and ``course.manage_documents`` (staff: upload, sync, stats).
"""

from __future__ import annotations

from caipi.core.permissions import Action

DOCUMENT_VIEW = Action.DOCUMENT_VIEW
DOCUMENT_MANAGE = Action.DOCUMENT_MANAGE
COURSE_MANAGE_DOCUMENTS = Action.COURSE_MANAGE_DOCUMENTS
