"""The actions the rag app registers with ``caipi.core.permissions``.

``document.view``: course members search the notes and read the documents visible to them.
``document.manage``: staff also see hidden and not-yet-available documents, and delete them.
``course.manage_documents``: staff upload, sync, and see the course's notes statistics.
"""

from __future__ import annotations

from caipi.core.permissions import MEMBERS, TEACHERS, register_course_action

DOCUMENT_VIEW = register_course_action("document.view", roles=MEMBERS)
DOCUMENT_MANAGE = register_course_action("document.manage", roles=TEACHERS)
COURSE_MANAGE_DOCUMENTS = register_course_action("course.manage_documents", roles=TEACHERS)
