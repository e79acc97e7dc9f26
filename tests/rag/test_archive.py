"""Zip archives are unpacked only when safe: bombs, traversal, links and nesting are refused."""

import io
import stat
import zipfile

import pytest

from rag.parsing import CorruptFile, EncryptedFile, UnsafeArchive, parse
from rag.parsing.archive import archive_members


def _zip(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_an_archive_gives_its_files_without_folders_and_hidden_files():
    data = _zip(
        {"week-1/notes.md": b"# W1\n\ntext", "__MACOSX/._notes.md": b"x", ".DS_Store": b"x"}
    )
    assert [(m.name, m.data) for m in archive_members("notes.zip", data)] == [
        ("week-1/notes.md", b"# W1\n\ntext")
    ]


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    bomb = _zip({"huge.txt": b"0" * (50 * 1024 * 1024)})
    assert len(bomb) < 100 * 1024
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        archive_members("bomb.zip", bomb)


def test_an_archive_over_the_unpacked_size_limit_is_refused(settings):
    settings.RAG_ARCHIVE_MAX_BYTES = 10_000
    data = _zip({"a.txt": b"a" * 6000, "b.txt": b"b" * 6000}, compression=zipfile.ZIP_STORED)
    with pytest.raises(UnsafeArchive, match="more than"):
        archive_members("big.zip", data)


def test_sizes_an_archive_lies_about_are_caught_while_reading(settings):
    settings.RAG_ARCHIVE_MAX_BYTES = 10_000
    data = bytearray(_zip({"a.txt": b"a" * 20_000}, compression=zipfile.ZIP_STORED))
    # Claim 100 bytes in both the local header and the central directory.
    declared = (20_000).to_bytes(4, "little")
    data = data.replace(declared + declared, (100).to_bytes(4, "little") * 2)
    with pytest.raises((UnsafeArchive, CorruptFile)):
        archive_members("liar.zip", bytes(data))


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "notes/../../x.md", "C:/x.md", "..\\..\\x.md"]
)
def test_path_traversal_is_refused(name):
    data = _zip({name: b"# evil"})
    with pytest.raises(UnsafeArchive, match="outside the archive"):
        archive_members("evil.zip", data)


def test_symbolic_links_are_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("link.md")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        archive_members("links.zip", out.getvalue())


def test_too_many_files_are_refused(settings):
    settings.RAG_ARCHIVE_MAX_FILES = 3
    data = _zip({f"n{i}.md": b"x" for i in range(4)})
    with pytest.raises(UnsafeArchive, match="more than 3 files"):
        archive_members("many.zip", data)


def test_nested_archives_are_refused():
    data = _zip({"inner.zip": _zip({"a.md": b"# a"})})
    with pytest.raises(UnsafeArchive, match="another archive"):
        archive_members("nested.zip", data)


def test_an_encrypted_archive_is_refused_as_password_protected():
    data = bytearray(_zip({"secret.md": b"flagged as encrypted"}, compression=zipfile.ZIP_STORED))
    central = data.index(b"PK\x01\x02")
    data[6] |= 0x1  # the local header's flags
    data[central + 8] |= 0x1  # the central directory's flags
    with pytest.raises(EncryptedFile, match="password"):
        archive_members("secret.zip", bytes(data))


def test_a_corrupt_archive_is_refused():
    with pytest.raises(CorruptFile, match="not a valid zip"):
        archive_members("broken.zip", b"PK\x03\x04garbage")


def test_a_docx_that_is_a_zip_bomb_is_refused_before_parsing(settings):
    bomb = _zip({"word/document.xml": b" " * (50 * 1024 * 1024)})
    with pytest.raises(UnsafeArchive):
        parse("bomb.docx", bomb)
