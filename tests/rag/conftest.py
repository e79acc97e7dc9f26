"""Rag fixtures: real files of every format built in the test, and ingestion helpers.

The embedding model is the real bundled one (multilingual-e5-small); Chroma is embedded in
the test's own folder (see tests/conftest.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from caipi.core.models import Course
from rag import services
from rag.sources import SourceItem

NOTES_DIR = Path(__file__).resolve().parents[2] / "caipi" / "demo" / "notes"


def make_pdf(pages: list[tuple[str | None, str]], *, password: str | None = None) -> bytes:
    """A text PDF: one page per (outline heading or None, text); optionally encrypted."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for heading, text in pages:
        pdf.add_page()
        if heading:
            pdf.start_section(heading)
        pdf.multi_cell(w=0, text=text)
    if password:
        pdf.set_encryption(owner_password=password + "-owner", user_password=password)
    return bytes(pdf.output())


def make_scanned_pdf() -> bytes:
    """A PDF with a drawing and no text layer, as a scanner makes them."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(30, 30, 30)
    for row in range(20):
        pdf.rect(20, 20 + row * 10, 150 - row * 3, 4, style="F")
    return bytes(pdf.output())


def make_docx(parts: list[tuple[str, str]], *, page_break_before: int | None = None) -> bytes:
    """A DOCX from (style, text) pairs, e.g. ("Heading 1", "Week 1"), ("Normal", "...")."""
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    for index, (style, text) in enumerate(parts):
        if index == page_break_before:
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        document.add_paragraph(text, style=style)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pptx(slides: list[tuple[str, str, str]]) -> bytes:
    """A PPTX from (title, body, speaker notes) per slide."""
    import pptx

    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]
    for title, body, notes in slides:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def ingest(course: Course, name: str, data: bytes, **item: object) -> services.Outcome:
    """Ingest one file directly (no job), as an upload named ``name`` unless ``key`` is given."""
    fields = {"key": f"upload:{name}", "title": "", "filename": name, **item}
    return services.document_ingest(
        course=course, item=SourceItem(**fields), data=data, origin="upload"
    )


@pytest.fixture
def demo_notes(course: Course) -> list[services.Outcome]:
    """ML101 with the demo's three weeks of notes indexed."""
    return [ingest(course, path.name, path.read_bytes()) for path in sorted(NOTES_DIR.glob("*.md"))]
