"""`aftercare serve` as a child process of a test (kill tests, several replicas)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


class ServerProcess:
    """`aftercare serve` in a child process; the port is read from its first line."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--config", str(config)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log)
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:  # blocks until the server says it is serving
            m = re.search(rb"aftercare serving on .*:(\d+)", raw)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise AssertionError(f"server exited before serving: see {log}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self._close(30)

    def stop(self) -> None:
        self.proc.terminate()
        self._close(60)

    def _close(self, timeout: float) -> None:
        self.proc.wait(timeout)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._log.close()
