"""Headless Chromium for tests: render a local HTML file, screenshot it, catch console errors.

Needs only subprocess and Pillow (a matplotlib dependency). Used by the report and sweep HTML tests::

    shot = chromium.screenshot(path_to_html, tmp_path / "page.png")
    assert not shot.console_errors
    assert chromium.non_blank(shot.png)

``find()`` returns ``None`` when no Chromium is installed so that tests can
skip; scripts/test.sh installs the Debian package in CI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image  # pillow comes with matplotlib

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")
_CONSOLE = re.compile(r'CONSOLE\(\d+\)\] "(?P<msg>[^"]*)"|Uncaught [^\n]*')


@dataclass(frozen=True)
class Shot:
    png: Path
    console_errors: list[str]
    dom: str


def find() -> str | None:
    """Path of a Chromium binary, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout, check=False)


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 4000, timeout: float = 90) -> Shot:
    """Load ``html`` (a local file) with JavaScript logging on; save a screenshot to ``png``.

    Returns the screenshot path, console errors (uncaught exceptions and
    ``console.error`` messages, and failed resource loads) and the rendered DOM.

    Raises:
        RuntimeError: no Chromium, or it produced no screenshot.
    """
    binary = find()
    if binary is None:
        raise RuntimeError("no chromium binary on PATH")
    url = Path(html).resolve().as_uri()
    shot = _run(binary, ["--enable-logging=stderr", "--v=0", f"--screenshot={png}",
                         f"--window-size={width},{height}", url], timeout)
    if not Path(png).is_file():
        raise RuntimeError(f"chromium made no screenshot (exit {shot.returncode}): {shot.stderr[-500:]}")
    dom = _run(binary, ["--dump-dom", url], timeout)
    errors = [m.group(0) for m in _CONSOLE.finditer(shot.stderr)]
    errors += [line for line in shot.stderr.splitlines() if "net::ERR_" in line and "file://" in line]
    return Shot(png=Path(png), console_errors=errors, dom=dom.stdout)


def non_blank(png: Path, *, min_share: float = 0.01) -> bool:
    """Whether at least ``min_share`` of the pixels differ from the top-left (background) pixel."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    background = rgb.getpixel((0, 0))
    colors = rgb.getcolors(maxcolors=rgb.width * rgb.height)
    same = sum(n for n, color in colors if color == background)
    return 1 - same / (rgb.width * rgb.height) >= min_share
