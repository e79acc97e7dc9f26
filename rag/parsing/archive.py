"""Safe unpacking of zip archives (and the zip containers of DOCX and PPTX).

An archive is refused, not partly read, when it could hurt the server or escape its
folder: more members than ``RAG_ARCHIVE_MAX_FILES``, more unpacked bytes than
``RAG_ARCHIVE_MAX_BYTES`` (counted while reading, since the sizes an archive declares can
lie), a member compressed more than ``MAX_RATIO`` times (a zip bomb), absolute paths or
``..`` (path traversal), symbolic links, encrypted members, nested archives.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.utils.translation import gettext as _

from rag.parsing import CorruptFile, EncryptedFile, UnsafeArchive, is_archive

MAX_RATIO = 200
_READ_SIZE = 1 << 16


@dataclass(frozen=True)
class Member:
    """One file taken out of an archive: its path inside it and its bytes."""

    name: str
    data: bytes


def _open(name: str, data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CorruptFile(_("“%(name)s” is not a valid zip archive.") % {"name": name}) from None


def _check_member(archive: str, info: zipfile.ZipInfo) -> None:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchive(
            _("“%(name)s” was refused: “%(member)s” points outside the archive.")
            % {"name": archive, "member": info.filename}
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchive(
            _("“%(name)s” was refused: “%(member)s” is a symbolic link.")
            % {"name": archive, "member": info.filename}
        )
    if info.flag_bits & 0x1:
        raise EncryptedFile(
            _("“%(name)s” is password-protected. Upload it without a password.") % {"name": archive}
        )
    if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 20:
        raise UnsafeArchive(
            _("“%(name)s” was refused: it unpacks to far more than its size (a zip bomb?).")
            % {"name": archive}
        )


def _too_big(archive: str) -> UnsafeArchive:
    return UnsafeArchive(
        _("“%(name)s” was refused: it unpacks to more than %(limit)d MB.")
        % {"name": archive, "limit": settings.RAG_ARCHIVE_MAX_BYTES // (1024 * 1024)}
    )


def check_container(name: str, data: bytes) -> None:
    """Refuse a DOCX or PPTX whose zip container is unsafe, before a library unpacks it."""
    with _open(name, data) as archive:
        infos = archive.infolist()
        if len(infos) > 10 * settings.RAG_ARCHIVE_MAX_FILES:
            raise UnsafeArchive(_("“%(name)s” has too many parts.") % {"name": name})
        total = 0
        for info in infos:
            _check_member(name, info)
            total += info.file_size
        if total > settings.RAG_ARCHIVE_MAX_BYTES:
            raise _too_big(name)


def archive_members(name: str, data: bytes) -> list[Member]:
    """The files of the zip archive ``data`` (folders and hidden files left out).

    Raises UnsafeArchive, EncryptedFile or CorruptFile for the whole archive (see module doc).
    """
    members: list[Member] = []
    budget = settings.RAG_ARCHIVE_MAX_BYTES
    with _open(name, data) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > settings.RAG_ARCHIVE_MAX_FILES:
            raise UnsafeArchive(
                _("“%(name)s” was refused: it holds more than %(limit)d files.")
                % {"name": name, "limit": settings.RAG_ARCHIVE_MAX_FILES}
            )
        for info in infos:
            _check_member(name, info)
        if sum(info.file_size for info in infos) > budget:
            raise _too_big(name)
        for info in infos:
            path = PurePosixPath(info.filename.replace("\\", "/"))
            if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
                continue
            if is_archive(path.name):
                raise UnsafeArchive(
                    _("“%(name)s” was refused: it contains another archive (“%(member)s”).")
                    % {"name": name, "member": info.filename}
                )
            content = _read_bounded(archive, info, budget, name)
            budget -= len(content)
            members.append(Member(name=str(path), data=content))
    return members


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, name: str) -> bytes:
    """Read one member, stopping as soon as it passes the remaining byte budget."""
    out = io.BytesIO()
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(_READ_SIZE):
                if out.tell() + len(chunk) > budget:
                    raise _too_big(name)
                out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
        raise CorruptFile(
            _("“%(name)s” is damaged: “%(member)s” cannot be unpacked.")
            % {"name": name, "member": info.filename}
        ) from None
    return out.getvalue()
