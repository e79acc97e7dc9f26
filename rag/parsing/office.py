"""Word (DOCX) and PowerPoint (PPTX) through python-docx and python-pptx.

DOCX: paragraphs and tables in reading order, headings from the "Heading N" and "Title"
styles, pages counted from the page breaks Word recorded (when it recorded any). PPTX:
one block per slide (title, text, tables, speaker notes), the slide number as its page.
Password-protected Office files are not zip files but OLE containers: refused as such.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

from django.utils.translation import gettext as _

from rag.parsing import Block, CorruptFile, EncryptedFile, ParsedDocument, title_from_name
from rag.parsing.archive import check_container

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _check(name: str, data: bytes, label: str) -> None:
    if data.startswith(_OLE_MAGIC):
        raise EncryptedFile(
            _(
                "“%(name)s” is password-protected or in the old binary Office format. "
                "Save it as %(label)s without a password and upload it again."
            )
            % {"name": name, "label": label}
        )
    if not data.startswith(b"PK"):
        raise CorruptFile(
            _("“%(name)s” is not a valid %(label)s file.") % {"name": name, "label": label}
        )
    check_container(name, data)


def _corrupt(name: str, label: str) -> CorruptFile:
    return CorruptFile(
        _("“%(name)s” is damaged and cannot be read as %(label)s.") % {"name": name, "label": label}
    )


def parse_docx(name: str, data: bytes) -> ParsedDocument:
    import docx

    _check(name, data, "DOCX")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, SyntaxError):
        raise _corrupt(name, "DOCX") from None
    except Exception as exc:  # lxml and python-docx raise many kinds on broken parts
        if type(exc).__module__.startswith(("docx", "lxml")):
            raise _corrupt(name, "DOCX") from None
        raise
    title = (document.core_properties.title or "").strip()
    blocks, pages, first_heading = _docx_blocks(document)
    return ParsedDocument(
        title=title or first_heading or title_from_name(name),
        kind="docx",
        blocks=blocks,
        pages=pages,
    )


def _docx_blocks(document: Any) -> tuple[list[Block], int, str]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    blocks: list[Block] = []
    path: tuple[str, ...] = ()
    page, paged, first_heading = 1, False, ""
    for element in document.element.body.iterchildren():
        if element.tag == f"{_W}p":
            paragraph = Paragraph(element, document)
            breaks = _page_breaks(element)
            page, paged = page + breaks, paged or breaks > 0
            text = " ".join(paragraph.text.split())
            level = _heading_level(paragraph)
            if level is not None and text:
                path = (*path[: level - 1], text)
                first_heading = first_heading or text
            elif text:
                blocks.append(Block(text=text, heading=path, page=page))
        elif element.tag == f"{_W}tbl":
            for row in _table_rows(Table(element, document)):
                blocks.append(Block(text=row, heading=path, page=page))
    if not paged:
        blocks = [Block(text=b.text, heading=b.heading, page=None) for b in blocks]
    return blocks, (page if paged else 0), first_heading


def _page_breaks(element: Any) -> int:
    rendered = len(element.findall(f".//{_W}lastRenderedPageBreak"))
    explicit = sum(1 for br in element.findall(f".//{_W}br") if br.get(f"{_W}type") == "page")
    return max(rendered, explicit)


def _heading_level(paragraph: Any) -> int | None:
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if style == "Title":
        return 1
    if style.startswith("Heading"):
        digits = style.removeprefix("Heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None


def _table_rows(table: Any) -> Iterator[str]:
    for row in table.rows:
        cells = [" ".join(cell.text.split()) for cell in row.cells]
        line = " | ".join(cell for cell in cells if cell)
        if line:
            yield line


def parse_pptx(name: str, data: bytes) -> ParsedDocument:
    import pptx
    from pptx.exc import PackageNotFoundError

    _check(name, data, "PPTX")
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise _corrupt(name, "PPTX") from None
    except Exception as exc:
        if type(exc).__module__.startswith(("pptx", "lxml")):
            raise _corrupt(name, "PPTX") from None
        raise
    blocks = []
    first_title = ""
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        first_title = first_title or title
        parts = [
            text
            for shape in slide.shapes
            if shape is not title_shape
            for text in _shape_text(shape)
        ]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = " ".join(slide.notes_slide.notes_text_frame.text.split())
            if notes:
                parts.append(_("Notes: %(notes)s") % {"notes": notes})
        body = "\n".join(parts) or title
        if body:
            heading = (title,) if title else (_("Slide %(number)d") % {"number": number},)
            blocks.append(Block(text=body, heading=heading, page=number))
    core_title = (presentation.core_properties.title or "").strip()
    return ParsedDocument(
        title=core_title or first_title or title_from_name(name),
        kind="pptx",
        blocks=blocks,
        pages=len(presentation.slides),
    )


def _shape_text(shape: Any) -> Iterator[str]:
    if shape.has_text_frame:
        for paragraph in shape.text_frame.paragraphs:
            text = " ".join("".join(run.text for run in paragraph.runs).split())
            if text:
                yield text
    if getattr(shape, "has_table", False):
        yield from _table_rows(shape.table)
    if shape.shape_type == 6:  # a group: its shapes, in order
        for inner in shape.shapes:
            yield from _shape_text(inner)
