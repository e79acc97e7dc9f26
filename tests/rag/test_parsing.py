"""Parsing keeps titles, headings and pages, and refuses what it cannot read, saying why."""

import pytest

from rag.parsing import (
    CorruptFile,
    EmptyDocument,
    EncryptedFile,
    NoText,
    UnsupportedType,
    parse,
)
from tests.rag.conftest import make_docx, make_pdf, make_pptx, make_scanned_pdf


def test_a_pdf_keeps_its_pages_and_outline_headings():
    data = make_pdf(
        [
            ("Introduction", "Tom Mitchell defined learning in 1997."),
            (None, "More on page two."),
            ("Regression", "Least squares."),
        ]
    )
    document = parse("week-01.pdf", data)
    assert document.kind == "pdf" and document.pages == 3
    assert [(b.heading, b.page) for b in document.blocks] == [
        (("Introduction",), 1),
        (("Introduction",), 2),
        (("Regression",), 3),
    ]
    assert "Tom Mitchell" in document.blocks[0].text


def test_a_password_protected_pdf_is_refused_as_such():
    with pytest.raises(EncryptedFile, match="password"):
        parse("secret.pdf", make_pdf([(None, "hidden")], password="pw"))


def test_a_scanned_pdf_without_text_is_refused_with_advice():
    with pytest.raises(NoText, match="scanned"):
        parse("scan.pdf", make_scanned_pdf())


def test_a_corrupt_pdf_is_refused():
    with pytest.raises(CorruptFile, match="damaged"):
        parse("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 200)
    with pytest.raises(CorruptFile, match="not a valid PDF"):
        parse("fake.pdf", b"This is not a PDF at all.")


def test_a_docx_keeps_heading_paths_and_counts_pages_from_page_breaks():
    data = make_docx(
        [
            ("Title", "Machine Learning"),
            ("Heading 1", "Week 1"),
            ("Normal", "Learning from experience."),
            ("Heading 2", "Supervised learning"),
            ("Normal", "Labels are given."),
            ("Heading 1", "Week 2"),
            ("Normal", "Gradient descent."),
        ],
        page_break_before=5,
    )
    document = parse("course.docx", data)
    assert document.title == "Machine Learning"
    assert [(b.text, b.heading, b.page) for b in document.blocks] == [
        ("Learning from experience.", ("Week 1",), 1),
        ("Labels are given.", ("Week 1", "Supervised learning"), 1),
        ("Gradient descent.", ("Week 2",), 2),
    ]


def test_a_pptx_gives_one_block_per_slide_with_title_and_notes():
    data = make_pptx(
        [
            ("Overfitting", "Too many parameters", "Say: show the curve"),
            ("Regularisation", "L2 shrinks weights", ""),
        ]
    )
    document = parse("slides.pptx", data)
    assert document.pages == 2
    first, second = document.blocks
    assert first.heading == ("Overfitting",) and first.page == 1
    assert "Too many parameters" in first.text and "show the curve" in first.text
    assert second.heading == ("Regularisation",) and second.page == 2


def test_a_password_protected_office_file_is_refused_as_such():
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    with pytest.raises(EncryptedFile, match="password"):
        parse("protected.docx", ole)


def test_a_corrupt_docx_is_refused():
    with pytest.raises(CorruptFile):
        parse("broken.docx", b"PK\x03\x04 not really a zip")


def test_html_keeps_the_heading_path_and_skips_scripts():
    html = b"""<html><head><title>Week 3</title><script>var x = 'no';</script></head>
    <body><nav>Menu</nav><h1>Evaluation</h1><p>Accuracy misleads.</p>
    <h2>Cross-validation</h2><ul><li>k folds</li><li>average</li></ul></body></html>"""
    document = parse("page.html", html)
    assert document.title == "Week 3"
    assert [(b.text, b.heading) for b in document.blocks] == [
        ("Accuracy misleads.", ("Evaluation",)),
        ("k folds", ("Evaluation", "Cross-validation")),
        ("average", ("Evaluation", "Cross-validation")),
    ]


def test_markdown_headings_nest_and_code_fences_are_not_headings():
    text = (
        "# Week 2\n\nIntro text with a [link](http://x) and **bold**.\n\n"
        "## Gradient descent\n\n```\n# not a heading\n```\n\nStep size matters.\n"
    )
    document = parse("week-02.md", text.encode())
    assert document.title == "Week 2"
    assert [(b.text, b.heading) for b in document.blocks] == [
        ("Intro text with a link and bold.", ("Week 2",)),
        ("# not a heading", ("Week 2", "Gradient descent")),
        ("Step size matters.", ("Week 2", "Gradient descent")),
    ]


def test_plain_text_in_windows_encoding_is_read():
    document = parse("notes.txt", "Übung macht den Meister.\n\nZweiter Absatz.".encode("cp1252"))
    assert [b.text for b in document.blocks] == ["Übung macht den Meister.", "Zweiter Absatz."]


@pytest.mark.parametrize("name", ["slides.key", "data.xlsx", "picture.png", "old.doc"])
def test_unsupported_types_are_refused_by_name(name):
    with pytest.raises(UnsupportedType, match=name):
        parse(name, b"something")


@pytest.mark.parametrize(
    "name,data",
    [
        ("empty.md", b""),
        ("blank.txt", b"  \n\n "),
        ("tags.html", b"<html><body><p> </p></body></html>"),
    ],
)
def test_empty_documents_are_refused(name, data):
    with pytest.raises(EmptyDocument):
        parse(name, data)


def test_binary_data_named_as_text_is_refused():
    with pytest.raises(CorruptFile, match="not a text file"):
        parse("notes.txt", b"\x00\x01\x02binary")
