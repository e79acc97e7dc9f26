"""PDF through PDFium (pypdfium2): text per page, headings from the PDF's outline."""

from __future__ import annotations

import re

import pypdfium2 as pdfium
from django.utils.translation import gettext as _

from rag.parsing import Block, CorruptFile, EncryptedFile, ParsedDocument, title_from_name

_HYPHENATED = re.compile(r"(\w)-\r?\n(\w)")
_PASSWORD_ERRORS = {4, 6}  # FPDF_ERR_PASSWORD, FPDF_ERR_SECURITY


def parse_pdf(name: str, data: bytes) -> ParsedDocument:
    """One block per page (text with line breaks undone), under the outline's headings."""
    if b"%PDF" not in data[:1024]:
        raise CorruptFile(_("“%(name)s” is not a valid PDF file.") % {"name": name})
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) in _PASSWORD_ERRORS:
            raise EncryptedFile(
                _("“%(name)s” is password-protected. Upload it without a password.")
                % {"name": name}
            ) from None
        raise CorruptFile(
            _("“%(name)s” is damaged and cannot be read as a PDF.") % {"name": name}
        ) from None
    try:
        return _read(name, pdf)
    except pdfium.PdfiumError:
        raise CorruptFile(
            _("“%(name)s” is damaged and cannot be read as a PDF.") % {"name": name}
        ) from None
    finally:
        pdf.close()


def _read(name: str, pdf: pdfium.PdfDocument) -> ParsedDocument:
    outline = _outline(pdf)
    title = (pdf.get_metadata_value("Title") or "").strip() or title_from_name(name)
    blocks = []
    path: tuple[str, ...] = ()
    for index in range(len(pdf)):
        for level, heading in outline.get(index, []):
            path = (*path[:level], heading)
        page = pdf[index]
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_bounded()
        finally:
            textpage.close()
            page.close()
        text = _HYPHENATED.sub(r"\1\2", text)
        text = " ".join(text.split())
        if text:
            blocks.append(Block(text=text, heading=path, page=index + 1))
    return ParsedDocument(title=title, kind="pdf", blocks=blocks, pages=len(pdf))


def _outline(pdf: pdfium.PdfDocument) -> dict[int, list[tuple[int, str]]]:
    """Page index -> [(level, title)] of outline entries that start on that page."""
    entries: dict[int, list[tuple[int, str]]] = {}
    try:
        bookmarks = list(pdf.get_toc(max_depth=6))
    except pdfium.PdfiumError:
        return entries
    for bookmark in bookmarks:
        dest = bookmark.get_dest()
        index = dest.get_index() if dest is not None else None
        title = " ".join((bookmark.get_title() or "").split())
        if index is not None and title:
            entries.setdefault(index, []).append((bookmark.level, title))
    return entries
