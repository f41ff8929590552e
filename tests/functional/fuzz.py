"""Hypothesis strategies that walk a protobuf message descriptor.

Each field gets values an outside client could send: random unicode (control
characters and lone-surrogate-free text, since protobuf strings must be UTF-8),
strings near and over the server's size limits, random ids, negative and extreme
integers, NaN and infinite floats, random map keys, repeated fields of odd lengths.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_T = FieldDescriptor
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

# Text an attacker or a broken gateway sends: any code point except surrogates (not
# encodable as UTF-8, so no client can send them), control characters and NUL included.
_any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=64)
_ids = st.sampled_from(["", "C000001", "O0000854", "P000001", "dec-0", "ho-x", "act-1",
                        "intent-classifier", "minilm-embedder", "../../etc/passwd",
                        "/dev/null", "\x00", "' OR 1=1 --", "C" * 300])
_huge = st.sampled_from([2_000, 8_192, 8_193, 70_000]).map(lambda n: "x" * n)
_words = st.sampled_from(["chat", "email", "social", "pending", "claimed", "resolved",
                          "accepted", "edited", "rejected", "article", "kind", "tag",
                          "where is my order?", "return my shoes", "2026-01-01",
                          "2026-13-45T99:99", "NaN"])
TEXT = st.one_of(_any_text, _ids, _words, _huge)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == _T.TYPE_STRING:
        return TEXT
    if t == _T.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == _T.TYPE_BOOL:
        return st.booleans()
    if t in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        big = 3.0e38 if t == _T.TYPE_FLOAT else 1e300
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                         st.sampled_from([0.0, -1.0, 1.0, 5.0, 11.0, big, -big]))
    if t in (_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32):
        return st.one_of(st.integers(*_INT32), st.sampled_from([0, -1, 1, 3, 10, 10_000]))
    if t in (_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64):
        return st.integers(*_INT64)
    if t in (_T.TYPE_UINT32, _T.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (_T.TYPE_UINT64, _T.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if t == _T.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    raise TypeError(f"no strategy for field type {t}")


def _is_map(field: FieldDescriptor) -> bool:
    mt = field.message_type
    return bool(mt is not None and mt.GetOptions().map_entry)


@st.composite
def messages(draw: st.DrawFn, desc: Descriptor, cls: type[Message], depth: int = 0) -> Message:
    """A message of type `cls` with a random subset of its fields set."""
    msg = cls()
    for field in desc.fields:
        if not draw(st.booleans()):
            continue
        if _is_map(field):
            key_f, val_f = field.message_type.fields_by_name["key"], \
                field.message_type.fields_by_name["value"]
            keys = draw(st.lists(_scalar(key_f), max_size=4))
            target = getattr(msg, field.name)
            for k in keys:
                if val_f.type == _T.TYPE_MESSAGE:
                    if depth < 2:
                        target[k].CopyFrom(draw(messages(
                            val_f.message_type, type(target[k]), depth + 1)))
                else:
                    target[k] = draw(_scalar(val_f))
            continue
        repeated = field.is_repeated
        if field.type == _T.TYPE_MESSAGE:
            if depth >= 2:
                continue
            container = getattr(msg, field.name)
            if repeated:
                for _ in range(draw(st.integers(0, 3))):
                    item = container.add()
                    item.CopyFrom(draw(messages(field.message_type, type(item), depth + 1)))
            else:
                container.CopyFrom(draw(messages(field.message_type, type(container),
                                                 depth + 1)))
            continue
        if repeated:
            n = draw(st.sampled_from([0, 1, 2, 5, 300]))
            values = [draw(_scalar(field)) for _ in range(min(n, 5))]
            if n == 300:  # over the per-call limits (e.g. Embed's max_texts)
                values = values * 60
            getattr(msg, field.name).extend(values)
        else:
            setattr(msg, field.name, draw(_scalar(field)))
    return msg
