"""``manage.py moodle_plugin``: build the block_caipi zip a Moodle admin uploads.

The zip holds one folder, ``caipi/`` (Moodle installs a block plugin into
``blocks/<name>``), and is named ``block_caipi-<release>-<version>.zip`` after
``version.php``. Moodle: Site administration > Plugins > Install plugins.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

SOURCE = Path(__file__).resolve().parents[2] / "moodle" / "block_caipi"


def plugin_version(source: Path = SOURCE) -> tuple[str, str]:
    """``(release, version)`` as version.php declares them."""
    text = (source / "version.php").read_text()
    release = re.search(r"\$plugin->release\s*=\s*'([^']+)'", text)
    version = re.search(r"\$plugin->version\s*=\s*(\d+)", text)
    if not release or not version:
        raise CommandError(f"{source / 'version.php'} declares no release or version.")
    return release.group(1), version.group(1)


def plugin_zip_build(*, output: Path, source: Path = SOURCE) -> Path:
    """Write the zip into ``output`` (created if needed); returns its path."""
    release, version = plugin_version(source)
    output.mkdir(parents=True, exist_ok=True)
    target = output / f"block_caipi-{release}-{version}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, Path("caipi") / path.relative_to(source))
    return target


class Command(BaseCommand):
    help = "Build block_caipi-<release>-<version>.zip, the Moodle block plugin, for upload."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--output",
            type=Path,
            default=None,
            help="Folder for the zip (default: CAIPI_DATA_DIR/dist).",
        )

    def handle(self, *args: Any, output: Path | None = None, **options: Any) -> None:
        target = plugin_zip_build(output=output or Path(settings.DATA_DIR) / "dist")
        self.stdout.write(str(target))
