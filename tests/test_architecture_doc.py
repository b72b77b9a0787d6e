"""docs/architecture.md keeps one line per module: a new module adds its line, a removed one drops it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("auditor", "attacks", "canaries", "reports")


def test_the_package_map_names_every_module_and_only_those():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    mapped = set(re.findall(r"^\| `((?:auditor|attacks|canaries|reports)/[\w/]+\.py)` \|", doc, flags=re.M))
    modules = {p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    assert sorted(modules - mapped) == [], "modules missing from docs/architecture.md"
    assert sorted(mapped - modules) == [], "docs/architecture.md names modules that do not exist"
