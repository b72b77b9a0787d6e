"""No output of a command may be one of its inputs: checked once, at the boundary, on resolved paths."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from auditor.errors import UserError

PathLike = str | os.PathLike


def refuse_overwriting_inputs(inputs: Mapping[str, PathLike | None],
                              outputs: Mapping[str, PathLike | Iterable[PathLike] | None]) -> None:
    """Raise ``UserError`` when an output path is an input path, or an output directory holds one.

    Args:
        inputs: option name (``"--against"``) -> the path given (``None``: not given).
        outputs: option name -> the path it writes, or every path it writes or
            deletes (a run directory's files); ``None``: not given.

    Paths are compared resolved (``..`` and symbolic links followed), and files
    that exist are also compared by identity (a hard link is the same file).
    """
    for out_name, outs in outputs.items():
        if outs is None:
            continue
        for out in [outs] if isinstance(outs, (str, os.PathLike)) else outs:
            for in_name, given in inputs.items():
                if given is not None and _overlaps(Path(given), Path(out)):
                    raise UserError(f"{in_name} {given} is also an output ({out_name} writes {out}); "
                                    "nothing was written: give different paths")


def _overlaps(given: Path, out: Path) -> bool:
    i, o = given.resolve(), out.resolve()
    if i == o or o in i.parents:
        return True
    return i.exists() and o.exists() and os.path.samefile(i, o)
