"""Reading lecture notes: PDF, DOCX, PPTX, HTML, Markdown and plain text into blocks.

``parse(name, data)`` returns a ``ParsedDocument``: its title, its text as blocks that
keep the heading path above them and the page (or slide) they are on. It raises a
``ParseError`` subclass whose message names the reason in words a lecturer understands:
unsupported type, corrupt, encrypted, no text (scanned), empty. Zip archives are not
parsed here: ``archive.archive_members`` unpacks them safely first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.utils.translation import gettext as _

from caipi.core.errors import ApplicationError


class ParseError(ApplicationError):
    """A file that cannot become lecture notes; the message says why."""

    code = "unreadable_document"


class UnsupportedType(ParseError):
    code = "unsupported_type"


class CorruptFile(ParseError):
    code = "corrupt_file"


class EncryptedFile(ParseError):
    code = "encrypted_file"


class NoText(ParseError):
    code = "no_text"


class EmptyDocument(ParseError):
    code = "empty_document"


class UnsafeArchive(ParseError):
    code = "unsafe_archive"


@dataclass(frozen=True)
class Block:
    """A paragraph (or list, table row, slide body) with the headings above it and its page."""

    text: str
    heading: tuple[str, ...] = ()
    page: int | None = None


@dataclass
class ParsedDocument:
    """What a parser found: title, blocks in reading order, and pages (or slides) counted."""

    title: str
    kind: str
    blocks: list[Block] = field(default_factory=list)
    pages: int = 0


EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
}
ARCHIVE_EXTENSIONS = {".zip"}


def kind_for(name: str) -> str | None:
    """The document kind for a file name, by extension; None when CAIPI cannot read it."""
    return EXTENSIONS.get(PurePosixPath(name).suffix.lower())


def is_archive(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in ARCHIVE_EXTENSIONS


def title_from_name(name: str) -> str:
    """``week-01_intro.pdf`` -> ``week 01 intro``: a readable fallback title."""
    stem = PurePosixPath(name).stem
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or name


def parse(name: str, data: bytes) -> ParsedDocument:
    """Parse ``data`` as the kind its file ``name`` says. Raises ParseError (see module doc)."""
    from rag.parsing import markup, office, pdf

    kind = kind_for(name)
    if kind is None:
        raise UnsupportedType(
            _("“%(name)s” is not a supported type (PDF, DOCX, PPTX, HTML, Markdown, text, zip).")
            % {"name": name}
        )
    if not data.strip():
        raise EmptyDocument(_("“%(name)s” is empty.") % {"name": name})
    readers = {
        "pdf": pdf.parse_pdf,
        "docx": office.parse_docx,
        "pptx": office.parse_pptx,
        "html": markup.parse_html,
        "markdown": markup.parse_markdown,
        "text": markup.parse_text,
    }
    document = readers[kind](name, data)
    document.blocks = [b for b in document.blocks if b.text.strip()]
    if not document.blocks:
        if kind == "pdf":
            raise NoText(
                _(
                    "“%(name)s” has no text layer (a scanned PDF?). Run text recognition (OCR) "
                    "on it and upload it again."
                )
                % {"name": name}
            )
        raise EmptyDocument(_("“%(name)s” contains no text.") % {"name": name})
    return document
