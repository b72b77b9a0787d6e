"""The layering of auditor/: no core module imports the CLI, and the CLI's modules import no heavy library.

Both checks run in a fresh interpreter, so that nothing imported by the test
session hides a missing or an extra import.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "opacus", "pandas")

# Records, for every module of the project, the modules it imports when it is imported
# (``import x``, ``from x import y``, relative imports), then imports every module of auditor/.
_GRAPH = r"""
import builtins, importlib, importlib.util, json, pkgutil, sys

OWN = ("auditor", "canaries", "attacks", "reports")
edges = {}
real_import = builtins.__import__

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    module = real_import(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__") or ""
    if importer.split(".")[0] in OWN:
        base = importlib.util.resolve_name("." * level + name, globals.get("__package__") or importer) \
            if level else name
        targets = {base} | {f"{base}.{f}" for f in (fromlist or ()) if f"{base}.{f}" in sys.modules}
        edges.setdefault(importer, set()).update(targets)
    return module

builtins.__import__ = recording_import
import auditor
# auditor.__main__ runs the CLI when imported: it is the CLI's entry point, nothing imports it
names = sorted(m.name for m in pkgutil.walk_packages(auditor.__path__, "auditor.") if m.name != "auditor.__main__")
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "edges": {k: sorted(v) for k, v in edges.items()}}))
"""


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _reachable(start: str, edges: dict[str, list[str]]) -> set[str]:
    """Every module ``start`` imports, directly or not (a submodule's import runs its packages' too)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            if mod not in seen:
                seen.add(mod)
                todo.extend(edges.get(mod, ()))
    seen.discard(start)
    return seen


def _is_cli(name: str) -> bool:
    return name == "auditor.cli" or name == "auditor.__main__" or name.startswith("auditor.commands")


def test_no_core_module_imports_the_cli():
    graph = json.loads(_fresh(_GRAPH).strip().splitlines()[-1])
    modules, edges = graph["modules"], graph["edges"]
    assert "auditor.chain" in modules and "auditor.commands.train" in modules
    assert "auditor.progress" in _reachable("auditor.chain", edges)  # the recorder sees real imports
    offenders = {m: sorted(x for x in _reachable(m, edges) if _is_cli(x)) for m in modules if not _is_cli(m)}
    assert {m: found for m, found in offenders.items() if found} == {}


def test_the_cli_and_every_command_module_import_no_heavy_library():
    out = _fresh("import importlib, json, pkgutil, sys\n"
                 "import auditor.cli, auditor.commands\n"
                 "for m in pkgutil.iter_modules(auditor.commands.__path__):\n"
                 "    importlib.import_module('auditor.commands.' + m.name)\n"
                 f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n")
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_the_config_knows_the_model_presets():
    from auditor.config import PRESET_NAMES
    from auditor.model import PRESETS

    assert tuple(PRESETS) == PRESET_NAMES


def test_the_command_table_lists_every_command_module():
    import pkgutil

    import auditor.commands
    from auditor.cli import COMMANDS

    modules = {m.name.replace("_", "-") for m in pkgutil.iter_modules(auditor.commands.__path__)
               if not m.name.startswith("_")}
    assert set(COMMANDS) == modules
