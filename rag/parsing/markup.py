"""HTML (also Moodle pages and book chapters), Markdown and plain text into blocks."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from django.utils.translation import gettext as _

from rag.parsing import Block, CorruptFile, ParsedDocument, title_from_name

_BLOCK_TAGS = {
    "p", "div", "li", "ul", "ol", "table", "tr", "td", "th", "pre", "blockquote", "section",
    "article", "br", "dd", "dt", "figcaption", "caption", "main", "body",
}  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SKIPPED = {"script", "style", "noscript", "template", "svg", "head", "nav", "iframe"}


def decode_text(name: str, data: bytes) -> str:
    """Text from bytes: UTF-8 (with or without BOM), else Windows-1252. Binary is refused."""
    if b"\x00" in data[:4096]:
        raise CorruptFile(_("“%(name)s” is not a text file.") % {"name": name})
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


class _HtmlBlocks(HTMLParser):
    """Collects text into blocks at block-level tags, tracking the heading path."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.path: tuple[str, ...] = ()
        self.title = ""
        self._buffer: list[str] = []
        self._skip = 0
        self._heading: int | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _HEADINGS and self._heading is not None:
            text = " ".join("".join(self._buffer).split())
            self._buffer = []
            if text:
                self.path = (*self.path[: self._heading - 1], text)
            self._heading = None
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self._buffer.append(data)

    def _flush(self) -> None:
        if self._heading is not None:
            return
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if text:
            self.blocks.append(Block(text=text, heading=self.path))

    def close(self) -> None:
        super().close()
        self._heading = None
        self._flush()


def parse_html(name: str, data: bytes) -> ParsedDocument:
    parser = _HtmlBlocks()
    parser.feed(decode_text(name, data))
    parser.close()
    title = " ".join(parser.title.split())
    first_heading = next((b.heading[0] for b in parser.blocks if b.heading), "")
    return ParsedDocument(
        title=title or first_heading or title_from_name(name), kind="html", blocks=parser.blocks
    )


_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")


def _inline(text: str) -> str:
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    return " ".join(_EMPHASIS.sub("", text).split())


def parse_markdown(name: str, data: bytes) -> ParsedDocument:
    """ATX and setext headings; paragraphs and lists as blocks; code fences kept as text."""
    lines = decode_text(name, data).splitlines()
    blocks: list[Block] = []
    path: tuple[str, ...] = ()
    paragraph: list[str] = []
    fenced = False

    def flush() -> None:
        text = _inline(" ".join(paragraph))
        paragraph.clear()
        if text:
            blocks.append(Block(text=text, heading=path))

    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
            continue
        heading = None if fenced else _ATX.match(line)
        setext = not fenced and paragraph and re.fullmatch(r"\s*(=+|-+)\s*", line)
        if heading:
            flush()
            level, text = len(heading.group(1)), _inline(heading.group(2))
            path = (*path[: level - 1], text)
        elif setext:
            text = _inline(" ".join(paragraph))
            paragraph.clear()
            path = (text,) if line.strip().startswith("=") else (*path[:1], text)
        elif not line.strip():
            flush()
        else:
            paragraph.append(line.strip())
    flush()
    first_heading = next((b.heading[0] for b in blocks if b.heading), "")
    return ParsedDocument(
        title=first_heading or title_from_name(name), kind="markdown", blocks=blocks
    )


def parse_text(name: str, data: bytes) -> ParsedDocument:
    """Paragraphs separated by blank lines."""
    text = decode_text(name, data)
    blocks = [
        Block(text=" ".join(part.split())) for part in re.split(r"\n\s*\n", text) if part.strip()
    ]
    return ParsedDocument(title=title_from_name(name), kind="text", blocks=blocks)
