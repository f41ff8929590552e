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


def write_config(tmp_path: Path, overrides: dict, records_url: str, name: str = "aftercare"
                 ) -> Path:
    """A config file for a child server: the session's models, demo shop and index
    (`server_overrides`), records at `records_url`, admission by time off, metrics off."""
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(f"""
[server]
host = "127.0.0.1"
port = 0
grace_s = 1.0
[models]
repository = "{overrides['models']['repository']}"
[data]
demo_dir = "{overrides['data']['demo_dir']}"
quarantine_dir = "{tmp_path / ('quarantine-' + name)}"
use_shared = false
[retrieval]
index_dir = "{overrides['retrieval']['index_dir']}"
[records]
url = "{records_url}"
[classifier_batcher]
max_queue_time_ms = 0
[embedder_batcher]
max_queue_time_ms = 0
[metrics]
port = 0
""")
    return cfg

