"""Which flows a server runs with: the shipped ones, ABCD's when shared, the shop's files."""

from __future__ import annotations

import logging
from pathlib import Path

from server.config import DataConfig, FlowsConfig
from server.conversation.flows import FlowEngine, load_flows
from server.knowledge.sources.abcd_flows import abcd_flows
from server.knowledge.sources.adapters import shared_data_dir

log = logging.getLogger(__name__)


def configured_flows(cfg: FlowsConfig, data: DataConfig, repo_root: Path) -> FlowEngine:
    documents = []
    if cfg.use_shared:
        root = Path(data.shared_dir) if data.shared_dir else shared_data_dir(repo_root)
        abcd = Path(cfg.abcd_dir) if cfg.abcd_dir else root / "abcd"
        if (abcd / "guidelines.json").is_file():
            documents.append((str(abcd), abcd_flows(abcd)))
    engine = load_flows([Path(p) for p in cfg.paths], documents=documents)
    log.info("%d guided flows loaded (%d from ABCD)", len(engine.flow_ids),
             sum(len(d["flows"]) for _, d in documents))
    return engine
