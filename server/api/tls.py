"""Server TLS credentials from `[server.tls]`, re-read on request (SIGHUP).

grpc asks the fetcher for a new certificate configuration at each handshake; it
answers None (keep the current one) unless a reload was requested, then reads the
files again. A rotation that fails to read keeps the old certificates and logs why,
so a bad deploy of a certificate never takes the port down.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc

from server.config import TlsConfig
from server.errors import InvalidInput

log = logging.getLogger(__name__)


class ServerTls:
    def __init__(self, cfg: TlsConfig) -> None:
        if bool(cfg.cert_file) != bool(cfg.key_file):
            raise InvalidInput("server.tls needs both cert_file and key_file")
        self._cfg = cfg
        self._reload = threading.Event()
        self.reloads = 0

    @property
    def enabled(self) -> bool:
        return bool(self._cfg.cert_file)

    @property
    def mutual(self) -> bool:
        return bool(self._cfg.client_ca_file)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        cfg = self._cfg
        try:
            key = Path(cfg.key_file).read_bytes()
            chain = Path(cfg.cert_file).read_bytes()
            ca = Path(cfg.client_ca_file).read_bytes() if cfg.client_ca_file else None
        except OSError as exc:
            raise InvalidInput(f"server.tls: cannot read {exc.filename}: {exc.strerror}") from exc
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=ca)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(), self._fetch,  # type: ignore[arg-type]  # None = keep
            require_client_authentication=self.mutual)

    def request_reload(self) -> None:
        """Re-read the files before the next handshake (the SIGHUP handler calls this)."""
        self._reload.set()

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        if not self._reload.is_set():
            return None
        self._reload.clear()
        try:
            config = self._configuration()
        except InvalidInput as exc:
            log.error("TLS reload failed, keeping the current certificates: %s", exc)
            return None
        self.reloads += 1
        log.info("TLS certificates reloaded")
        return config
