"""A quiet build: a few progress lines on the console, every detail in a build log file.

While a build runs, the root logger writes to ``<repository>/build-logs/<stamp>.log``
instead of the console (the quantizer logs one INFO line per tensor, thousands for
MiniLM), and the build prints one line per step (export, quantize, train, validate) with
its time. The log's path goes into the manifests. Python warnings are left alone: they
are filtered one by one where they are known and expected.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LOG_DIR = "build-logs"
# Libraries that attach their own console handler; routed to the log file while building.
_LIBRARY_LOGGERS = ("transformers", "optimum", "onnxruntime")


@dataclass(slots=True)
class BuildLog:
    """Where the details go, and the console progress printer."""

    path: Path
    quiet: bool = False
    started: float = field(default_factory=time.perf_counter)
    _logger: logging.Logger = field(default_factory=lambda: logging.getLogger("aftercare.build"))

    def __call__(self, message: str) -> None:
        """One progress line: to the console (unless quiet) and to the log."""
        line = f"[models {time.perf_counter() - self.started:6.1f}s] {message}"
        self._logger.info(message)
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)


def _configure_libraries() -> None:
    """Let transformers and optimum attach their console handlers now, so that the
    rerouting below sees them (they do it on first use, which is mid-build otherwise)."""
    for module in ("transformers.utils.logging", "optimum.utils.logging"):
        try:
            importlib.import_module(module).get_logger()
        except ImportError:
            continue


@contextmanager
def build_log(repository_root: Path, quiet: bool = False, log_dir: Path | None = None
              ) -> Iterator[BuildLog]:
    """Send root logging to a fresh log file (under ``repository_root``, or ``log_dir``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = (log_dir or repository_root / LOG_DIR) / f"{stamp}-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    _configure_libraries()
    libraries = [logging.getLogger(name) for name in _LIBRARY_LOGGERS]
    saved_libraries = [(lg.handlers[:], lg.propagate) for lg in libraries]
    for lg in libraries:
        lg.handlers = []
        lg.propagate = True
    try:
        yield BuildLog(path=path, quiet=quiet)
    finally:
        for lg, (handlers, propagate) in zip(libraries, saved_libraries, strict=True):
            lg.handlers = handlers
            lg.propagate = propagate
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        handler.close()
