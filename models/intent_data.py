"""Loading and validating an intent training CSV (text + label columns)."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from server.errors import DataError

DEFAULT_TEXT_COL = "text"
DEFAULT_LABEL_COL = "intent"


@dataclass(frozen=True, slots=True)
class IntentData:
    """Rows of one training file, in file order."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    sha256: str
    text_col: str
    label_col: str

    @property
    def label_counts(self) -> dict[str, int]:
        """Rows per label, sorted by label."""
        return dict(sorted(Counter(self.labels).items()))

    @property
    def label_names(self) -> list[str]:
        """Sorted distinct labels: the order of the classifier's probability columns."""
        return sorted(set(self.labels))


def default_intents_path() -> Path:
    """The demo shop's intent file shipped with the project."""
    return Path(__file__).resolve().parent / "data" / "demo_intents.csv"


def load_intents(
    path: Path,
    text_col: str = DEFAULT_TEXT_COL,
    label_col: str = DEFAULT_LABEL_COL,
    min_per_label: int = 1,
    min_labels: int = 2,
) -> IntentData:
    """Read ``path``; raise DataError for a missing column, a blank cell or a tiny class."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read intent file {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"intent file {path} is not UTF-8") from exc
    reader = csv.DictReader(text.splitlines(keepends=True))
    columns = reader.fieldnames or []
    for column in (text_col, label_col):
        if column not in columns:
            raise DataError(f"intent file {path} has no column {column!r} (columns: {columns})")
    texts: list[str] = []
    labels: list[str] = []
    for line_no, row in enumerate(reader, start=2):
        utterance = (row.get(text_col) or "").strip()
        label = (row.get(label_col) or "").strip()
        if not utterance and not label:
            continue
        if not utterance or not label:
            raise DataError(f"intent file {path} row {line_no}: empty text or label")
        texts.append(utterance)
        labels.append(label)
    data = IntentData(
        texts=tuple(texts),
        labels=tuple(labels),
        sha256=hashlib.sha256(raw).hexdigest(),
        text_col=text_col,
        label_col=label_col,
    )
    if not data.texts:
        raise DataError(f"intent file {path} has no rows")
    if len(data.label_counts) < min_labels:
        raise DataError(
            f"intent file {path} needs at least {min_labels} labels, has {len(data.label_counts)}"
        )
    small = {label: n for label, n in data.label_counts.items() if n < min_per_label}
    if small:
        raise DataError(f"intent file {path}: labels with fewer than {min_per_label} rows: {small}")
    return data
