"""axe-core, the accessibility checker, run inside a Playwright page.

axe-core comes from the npm registry (a pinned version installed with npm into
``var/test-assets``, not committed: CAIPI keeps no third-party code in its tree). CI
installs it in ``.ci/run``; locally the first browser test that needs it installs it the
same way, and skips (saying why) when npm is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

AXE_VERSION = "4.14.1"
ASSETS = Path(__file__).resolve().parents[2] / "var" / "test-assets"
AXE_JS = ASSETS / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA: what the university's accessibility duty asks for.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_script() -> str:
    """The source of axe.min.js, installing the pinned version first if needed."""
    if not AXE_JS.exists() or f"axe v{AXE_VERSION}" not in AXE_JS.read_text()[:40]:
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("needs axe-core: install Node's npm (apt-get install npm)")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(ASSETS),
             f"axe-core@{AXE_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return AXE_JS.read_text()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The WCAG A/AA violations axe finds on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_script())
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]
