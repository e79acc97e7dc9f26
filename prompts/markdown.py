"""Model answers as safe HTML: Markdown, highlighted code and math, then sanitized.

An answer is untrusted text (the model may repeat what a student typed). It is parsed as
CommonMark with tables and strikethrough, raw HTML *not* passed through; code blocks are
highlighted by Pygments (CSS classes, styled by ``prompts/static/prompts/answer.css``);
``$...$`` and ``$$...$$`` become MathML (rendered natively by browsers). The result then
goes through ammonia (``nh3``), a maintained allow-list sanitizer: only the tags, attributes,
classes and URL schemes listed here survive, so HTML or script in an answer stays inert
even if a renderer above let something through.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import nh3
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

logger = logging.getLogger(__name__)

MAX_SOURCE = 100_000
MATHML_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup",
    "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd",
    "mstyle", "mpadded", "mphantom", "menclose", "semantics", "annotation",
}  # fmt: skip
HTML_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    "span", "div", "sup", "sub",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
    "math": {"display", "xmlns"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace"},
    "mi": {"mathvariant"},
    "mstyle": {"displaystyle", "scriptlevel"},
    "mtd": {"columnalign"},
    "mspace": {"width"},
}
_TOKEN_CLASSES = {name for name in STANDARD_TYPES.values() if name}
CLASSES = {
    "span": _TOKEN_CLASSES | {"math", "inline"},
    "div": {"math", "block"},
    "code": {f"language-{name}" for name in ("python", "java", "js", "sql", "r", "c", "bash")},
}


def _code(code: str, lang: str, attrs: Any) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip().split(" ", 1)[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


def _math(content: str, options: dict[str, Any]) -> str:
    display = "block" if options.get("display_mode") else "inline"
    try:
        return latex_to_mathml(content, display=display)
    except Exception:  # latex2mathml raises many kinds on bad input; show the source instead
        logger.debug("math could not be converted", exc_info=True)
        escaped = content.replace("&", "&amp;").replace("<", "&lt;")
        return f"<code>{escaped}</code>"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "highlight": _code, "linkify": False})
    parser.enable(["table", "strikethrough"])
    dollarmath_plugin(parser, allow_digits=False, double_inline=True, renderer=_math)
    return parser


def answer_html(text: str) -> str:
    """The answer as sanitized HTML (see the module docstring)."""
    html = _parser().render(text[:MAX_SOURCE])
    return nh3.clean(
        html,
        tags=HTML_TAGS | MATHML_TAGS,
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def highlight_css() -> str:
    """The CSS for highlighted code (written into ``answer.css`` by ``manage.py`` tests)."""
    return HtmlFormatter(style="default").get_style_defs(".answer pre")
