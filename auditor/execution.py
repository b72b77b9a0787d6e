"""Where the heavy, partitionable stages run: this process, local worker processes, or a Dask cluster.

The stages that can be split (the PII scan over distinct values, the distance
attacks over query rows, generation over partitions of rows) hand an
:class:`Executor` a task function, one read-only ``shared`` object and a list of
parts, and get one result per part back, in the parts' order. Each stage splits
its work so that a part's result depends only on the part and the shared object,
and combines the results in order, so **results never depend on the engine or
on the number of workers**; generation depends on its number of partitions,
which is a setting of the run (``generate.partitions``), not of the engine.

Engines (``--engine NAME``, ``engine.name`` in the config):

- ``local`` (default): worker processes on this machine, one per core
  (``--workers N``), started on first use and kept for the command; a stage too
  small to gain from them runs in the calling process.
- ``dask``: a Dask distributed cluster at ``--address`` (``tcp://host:8786``,
  ``tls://...``), or, without an address, a ``LocalCluster`` started for the
  command. The shared object is scattered to every worker once; each part is one
  task. Workers need the same versions of dp-auditor and the libraries that shape
  results (:data:`MATCHED_PACKAGES`; checked on connect).

Per-worker state (the Presidio engine, a loaded model) lives in module-level
caches of the worker process: built at the first part a worker runs and reused
for the rest of the command.

Privacy: workers receive raw records, so a cluster is inside the same trust
boundary as this machine (``docs/scale.md``). Parts and shared objects travel in
:class:`Opaque` wrappers whose ``repr`` shows no content (Dask writes task
arguments into its logs when a task fails), and an exception raised in a worker
other than a ``UserError`` comes back as :class:`WorkerError` with its type only:
its message may quote the data.

The stages use :func:`current`, the executor of the running command
(:func:`activated` sets it); library callers get the local default.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

from auditor.bounds import WORKERS
from auditor.errors import UserError

ENGINES = ("local", "dask")

#: Environment variables that cap the threads of BLAS/OpenMP in a worker process.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


@dataclass
class EngineConfig:
    """Which engine runs the partitionable stages.

    Attributes:
        name: ``local`` or ``dask``.
        address: a Dask scheduler address; ``None``: a local cluster started for the command (dask only).
        workers: local worker processes, or the workers of a local Dask cluster; ``None``: one per core.
    """

    name: str = "local"
    address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.name not in ENGINES:
            raise UserError(f"--engine must be one of {', '.join(ENGINES)}, not {self.name!r}")
        if self.address is not None and self.name != "dask":
            raise UserError("--address needs --engine dask")
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise UserError("--address must be a scheduler address such as tcp://host:8786")
        if self.workers is not None and not WORKERS.admits(self.workers):
            raise UserError(f"--workers must be {WORKERS.describe()}, got {self.workers!r}")
        if self.workers is not None and self.address is not None:
            raise UserError("--workers sizes a local cluster; a cluster at --address has its own workers")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cores() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Opaque:
    """A value in transit to a worker; its ``repr`` names only its kind (logs must not quote data)."""

    __slots__ = ("value", "label")

    def __init__(self, value: Any, label: str = "part"):
        self.value = value
        self.label = label

    def __repr__(self) -> str:
        return f"<{self.label}>"

    def __getstate__(self):
        return (self.value, self.label)

    def __setstate__(self, state):
        self.value, self.label = state


class WorkerError(RuntimeError):
    """A task failed in a worker; only the exception's type is kept (its message may quote data)."""


#: glibc's mallopt parameter of ``MALLOC_TRIM_THRESHOLD_``, and the threshold a worker gets.
_M_TRIM_THRESHOLD = -1
_TRIM_THRESHOLD = 128 * 2**20
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest on 64-bit
_allocator_tuned = False


def _tune_allocator() -> None:
    """Undo a small ``MALLOC_TRIM_THRESHOLD_`` in this worker process (once).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so glibc hands
    freed memory back to the OS at once and takes it again at the next allocation.
    The scan (millions of small objects) and generation (small tensors every step)
    ran at half speed under it (``benchmarks/scale.py``: 1.05x with 2 workers instead
    of 2.2x): setting the variable also fixes glibc's mmap threshold at 128 KiB, so
    every larger tensor is mapped and unmapped. Here the trim threshold becomes
    128 MiB and the mmap threshold 32 MiB.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    value = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    if not value.isdigit() or int(value) >= _TRIM_THRESHOLD:
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        # The variable also froze the mmap threshold at 128 KiB: every tensor above it was mapped and unmapped.
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc: nothing to undo
        pass


def _run_part(fn: Callable[[Any, Any], Any], shared: Opaque, part: Opaque) -> Any:
    """Run one part in a worker, turning an unexpected exception into a :class:`WorkerError`."""
    _tune_allocator()
    try:
        return fn(shared.value, part.value)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the message is withheld on purpose
        raise WorkerError(f"{getattr(fn, '__name__', 'a task')} failed in a worker: {type(exc).__name__} "
                          "(message withheld: may quote data)") from None


#: In a local worker process: the shared object of the running map, by its token.
_SHARED: dict[str, Any] = {}


def _run_local_part(fn, token: str, blob: Opaque, part: Opaque) -> Any:
    """:func:`_run_part` in a local worker, unpickling the map's shared object at its first part only."""
    if token not in _SHARED:
        _SHARED.clear()
        _SHARED[token] = pickle.loads(blob.value)
    return _run_part(fn, Opaque(_SHARED[token], "shared"), part)


def _limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP and torch threads in a fresh worker process (before they are imported)."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


#: Distributions whose versions must match between the client and every worker: each can change a result.
MATCHED_PACKAGES = ("dp-auditor", "numpy", "torch", "transformers", "presidio-analyzer", "spacy", "phonenumbers")


def _versions() -> dict[str, str | None]:
    """The installed versions of :data:`MATCHED_PACKAGES` (None: not installed); imports none of them."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in MATCHED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def version_mismatches(client: dict[str, str | None], workers: dict[str, dict[str, str | None]]) -> list[str]:
    """``package client-version vs worker-version`` for each package some worker has in another version."""
    out = []
    for name in MATCHED_PACKAGES:
        others = sorted({str(v.get(name)) for v in workers.values()} - {str(client.get(name))})
        if others:
            out.append(f"{name} {client.get(name)} here, {', '.join(others)} on a worker")
    return out


class Executor:
    """Runs ``fn(shared, part)`` for each part; see the module docstring."""

    name = "inprocess"
    #: Processes that run parts at once.
    workers = 1

    def map(self, fn: Callable[[Any, Any], Any], parts: Sequence[Any], *, shared: Any = None,
            on_done: Callable[[int], None] | None = None) -> list[Any]:
        """``[fn(shared, part) for part in parts]``; ``on_done(i)`` as each part finishes (any order)."""
        out = []
        for i, part in enumerate(parts):
            out.append(fn(shared, part))
            if on_done is not None:
                on_done(i)
        return out

    def split(self, n_items: int, *, min_items: int, per_worker: int = 4) -> int:
        """How many parts to cut ``n_items`` into: one in this process, else a few per worker
        (for balance), none smaller than ``min_items``."""
        if self.workers <= 1 or n_items < 2 * min_items:
            return 1
        return max(1, min(self.workers * per_worker, n_items // min_items))

    def close(self) -> None:
        pass


class InProcess(Executor):
    """Every part in the calling process, in order."""


class LocalPool(Executor):
    """Worker processes on this machine (spawned, so no state is shared with the caller by fork)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = workers or cores()
        self._pool: ProcessPoolExecutor | None = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._pool is None:
            threads = max(1, cores() // self.workers)
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                             initializer=_limit_threads, initargs=(threads,))
        return self._pool

    def map(self, fn, parts, *, shared=None, on_done=None):
        if len(parts) <= 1 or self.workers <= 1:
            return super().map(fn, parts, shared=shared, on_done=on_done)
        pool = self._ensure()
        # Pickled once here; each worker unpickles it once per map (a model is tens of MB).
        blob = Opaque(pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL), "shared")
        token = uuid.uuid4().hex
        futures = {pool.submit(_run_local_part, fn, token, blob, Opaque(p)): i for i, p in enumerate(parts)}
        return _collect(futures, on_done, lambda f: f.result(), _wait_local)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _wait_local(pending):
    done, pending = wait(pending, return_when=FIRST_COMPLETED)
    return done, pending


def _collect(futures: dict, on_done, result, wait_some) -> list:
    """Results of ``futures`` (future -> part index) in part order; cancels the rest on the first failure."""
    out: list[Any] = [None] * len(futures)
    pending = set(futures)
    try:
        while pending:
            done, pending = wait_some(pending)
            for f in done:
                out[futures[f]] = result(f)
                if on_done is not None:
                    on_done(futures[f])
    except BaseException:
        for f in pending:
            f.cancel()
        raise
    return out


class DaskExecutor(Executor):
    """A Dask distributed cluster: at ``address``, or a ``LocalCluster`` started here."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, *, timeout: float = 30.0):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError("--engine dask needs Dask distributed: pip install 'dp-auditor[dask]'") from None
        self._cluster = None
        try:
            if address is None:
                import logging

                import dask

                logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines are per worker event
                # The workers' statistical profiler samples every thread's stack each 10 ms: 16% of a scan.
                with dask.config.set({"distributed.worker.profile.enabled": False}):
                    self._cluster = LocalCluster(n_workers=workers or cores(), threads_per_worker=1,
                                                 processes=True, dashboard_address=None)
                self.client = Client(self._cluster)
            else:
                self.client = Client(address, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as exc:
            self.close()
            raise UserError(f"cannot reach the Dask scheduler at {address or 'a local cluster'} "
                            f"({type(exc).__name__})") from None
        workers_versions = self.client.run(_versions)
        if not workers_versions:
            self.close()
            raise UserError(f"the Dask cluster at {address} has no workers")
        mismatches = version_mismatches(_versions(), workers_versions)
        if mismatches:
            self.close()
            raise UserError("the Dask workers run other library versions (results could differ): "
                            + "; ".join(mismatches))

    @property
    def workers(self) -> int:  # type: ignore[override]
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def map(self, fn, parts, *, shared=None, on_done=None):
        from distributed import wait as dask_wait

        if not parts:
            return []
        token = uuid.uuid4().hex[:12]
        label = getattr(fn, "__name__", "task").strip("_")
        shared_future = self.client.scatter(Opaque(shared, "shared"), broadcast=True, hash=False)
        futures = self.client.map(_run_part, [fn] * len(parts), [shared_future] * len(parts),
                                  [Opaque(p) for p in parts], pure=False,
                                  key=[f"{label}-{token}-{i}" for i in range(len(parts))])
        index = {f: i for i, f in enumerate(futures)}

        def wait_some(pending):
            res = dask_wait(list(pending), return_when="FIRST_COMPLETED")
            return set(res.done), set(res.not_done)

        try:
            return _collect(index, on_done, lambda f: f.result(), wait_some)
        finally:
            self.client.cancel(futures + [shared_future])

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(config: EngineConfig | None = None) -> Executor:
    """The executor of ``config`` (the local default without one)."""
    config = config or EngineConfig()
    config.validate()
    if config.name == "dask":
        return DaskExecutor(config.address, config.workers)
    workers = config.workers or cores()
    return InProcess() if workers == 1 else LocalPool(workers)


_current: ContextVar[Executor | None] = ContextVar("auditor_executor", default=None)
_default: Executor | None = None


def current() -> Executor:
    """The executor of the running command, or the local default (one worker per core)."""
    active = _current.get()
    if active is not None:
        return active
    global _default
    if _default is None:
        _default = make_executor()
    return _default


@contextlib.contextmanager
def activated(config: EngineConfig | Executor | None) -> Iterator[Executor]:
    """Make ``config``'s executor :func:`current` inside the block; closed on exit if made here."""
    made = not isinstance(config, Executor)
    executor = make_executor(config) if made else config
    token = _current.set(executor)
    try:
        yield executor
    finally:
        _current.reset(token)
        if made:
            executor.close()


def partition_sizes(n: int, parts: int) -> list[int]:
    """``n`` items cut into ``parts`` contiguous sizes differing by at most one (larger first)."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts!r}")
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]

