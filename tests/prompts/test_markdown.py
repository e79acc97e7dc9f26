from __future__ import annotations

import re

import pytest

from prompts.markdown import answer_html


def test_markdown_lists_render_as_lists():
    assert "<ul>\n<li>item</li>\n</ul>" in answer_html("* item")


def test_code_is_highlighted_with_classes():
    html = answer_html("```python\ndef f(): pass\n```")
    assert '<span class="k">def</span>' in html


def test_math_becomes_mathml():
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in answer_html("Area: $x^2$")
    assert "<mfrac>" in answer_html("$$\\frac{a}{b}$$")


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil></iframe>",
        "$<img src=x onerror=alert(1)>$",
        "```html\n<script>alert(1)</script>\n```",
        '<svg onload="alert(1)">',
    ],
)
def test_html_and_script_in_answers_stay_inert(attack):
    html = answer_html(attack).lower()
    for tag in ("<script", "<img", "<iframe", "<svg"):
        assert tag not in html
    assert not re.search(r'<a[^>]*href="javascript', html)
    assert not re.search(r"<[^>]*\son\w+=", html)  # no event handler on any real tag
