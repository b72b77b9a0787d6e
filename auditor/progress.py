"""Progress of the long stages (training steps, generated rows, audits), for the CLI and the API alike.

The stages take progress as callbacks; :class:`Progress` (silent) bundles those of
the whole chain (auditor.chain), :class:`TerminalProgress` draws them as tqdm bars
and one line per audit. It lives below the chain and the commands, so no module of
the core imports the CLI layer.

A bar is drawn at its first update, so that input refused before any work starts
(a missing file, a bad schema, a bad setting) prints its error line alone.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

from reports.summary import fmt_epsilon

TrainCallback = Callable[[int, int, float, "float | None"], None]  # (step, steps, loss, epsilon so far)
CountCallback = Callable[[int, int], None]  # (done, total)


class Progress:
    """How the chain reports progress; this base reports nothing."""

    @contextmanager
    def training(self, resumed: bool) -> Iterator[TrainCallback | None]:
        """Around training: yields the callback ``fit`` calls each step (or None)."""
        yield None

    @contextmanager
    def generating(self) -> Iterator[CountCallback | None]:
        """Around generation: yields the callback called as rows are sampled (or None)."""
        yield None

    def audit(self, name: str) -> None:
        """An audit (or a step of one) starts."""

    def note(self, text: str) -> None:
        """A decision the user should see (the fitted settings, the identifier table)."""


def silence_library_bars() -> None:
    """``-q``: no progress bars of transformers either ("Writing model shards", "Loading weights")."""
    # Deferred on purpose: transformers takes seconds to import and only a running stage needs it.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _bar(desc: str, unit: str, **kw):
    # Deferred on purpose: tqdm is needed only once a stage reports progress.
    from tqdm import tqdm

    return tqdm(total=None, desc=desc, unit=unit, dynamic_ncols=True, **kw)


@contextmanager
def _lazy_bar(desc: str, unit: str, **kw) -> Iterator[Callable[[], object]]:
    """Yields a getter of a bar that is drawn at its first use, so input errors raised before any
    progress print alone; the bar (if drawn) is closed on exit."""
    bars: list = []

    def bar_of():
        if not bars:
            bars.append(_bar(desc, unit, **kw))
        return bars[0]

    try:
        yield bar_of
    finally:
        if bars:
            bars[0].close()


@contextmanager
def train_progress(quiet: bool) -> Iterator[Callable[[int, int, float, float | None], None] | None]:
    """A bar of training steps showing the loss and epsilon so far; yields the callback for ``fit``."""
    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
        silence_library_bars()
        yield None
        return
    eps_so_far: list[float] = []

    with _lazy_bar("train", "step", leave=True) as bar_of:
        def update(step: int, steps: int, loss: float, eps: float | None) -> None:
            bar = bar_of()
            bar.total = steps
            if eps is not None:
                eps_so_far[:] = [eps]
            post = {"loss": f"{loss:.3f}"}
            if eps_so_far:
                post["eps"] = fmt_epsilon(eps_so_far[0])
            bar.set_postfix(post, refresh=False)
            bar.n = step
            bar.refresh()

        yield update


@contextmanager
def count_progress(quiet: bool, desc: str) -> Iterator[Callable[[int, int], None] | None]:
    """A bar of ``done`` out of ``total`` rows; yields the callback ``update(done, total)``."""
    if quiet:
        silence_library_bars()
        yield None
        return
    with _lazy_bar(desc, "row") as bar_of:
        def update(done: int, total: int) -> None:
            bar = bar_of()
            bar.total = total
            bar.n = done
            bar.refresh()

        yield update


class TerminalProgress(Progress):
    """The chain's progress as `auditor run` and `auditor demo` show it; nothing but warnings with ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    @contextmanager
    def training(self, resumed: bool) -> Iterator[TrainCallback | None]:
        with train_progress(self.quiet) as update:
            yield update

    @contextmanager
    def generating(self) -> Iterator[CountCallback | None]:
        with count_progress(self.quiet, "generate") as update:
            yield update

    def audit(self, name: str) -> None:
        if not self.quiet:
            print(f"audit: {name}", flush=True)

    def note(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)
