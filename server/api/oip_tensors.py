"""Open Inference Protocol tensors <-> domain values: BYTES text in, FP32/BYTES out.

BYTES elements arrive either in `raw_input_contents` (per element a 4-byte
little-endian length, then the bytes, as tritonclient sends them) or in
`contents.bytes_contents`. Answers use `raw_output_contents` when the request used
raw inputs, typed `contents` otherwise. Every malformed tensor is InvalidInput.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from aftercare.inference.v2 import grpc_service_pb2 as pb
from server.errors import InvalidInput
from server.inference.service import TextOutputs

TEXT = "TEXT"
PROBABILITIES = "PROBABILITIES"
EMBEDDING = "EMBEDDING"
INTENT = "INTENT"
OOS_SCORE = "OOS_SCORE"  # the classifier's `oos_score` [n], for versions that have it
_LEN = 4  # bytes of a BYTES element's length prefix


def split_bytes(buffer: bytes) -> list[bytes]:
    """Split a raw BYTES tensor into its length-prefixed elements."""
    out, at = [], 0
    while at < len(buffer):
        if at + _LEN > len(buffer):
            raise InvalidInput(f"malformed BYTES tensor: {len(buffer) - at} bytes left at "
                               f"offset {at}, too few for a length prefix")
        size = int.from_bytes(buffer[at:at + _LEN], "little")
        at += _LEN
        if at + size > len(buffer):
            raise InvalidInput(f"malformed BYTES tensor: element of {size} bytes at offset "
                               f"{at - _LEN} runs past the end ({len(buffer)} bytes)")
        out.append(buffer[at:at + size])
        at += size
    return out


def join_bytes(elements: Sequence[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(_LEN, "little") + e for e in elements)


def _elements(shape: Sequence[int]) -> int:
    if not shape or any(d < 0 for d in shape):
        raise InvalidInput(f"TEXT needs a concrete shape such as [n], got {list(shape)}")
    return math.prod(shape)


def decode_texts(request: pb.ModelInferRequest) -> tuple[list[str], bool]:
    """The TEXT input's strings, and whether the request sent raw contents."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    texts: list[str] | None = None
    for i, tensor in enumerate(request.inputs):
        if tensor.name != TEXT:
            raise InvalidInput(f"unknown input {tensor.name!r}: the models take {TEXT}")
        if texts is not None:
            raise InvalidInput(f"input {TEXT} given twice")
        if tensor.datatype != "BYTES":
            raise InvalidInput(f"input {TEXT} must be BYTES, not {tensor.datatype or '(none)'}")
        count = _elements(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput("give tensor contents either raw or typed, not both")
            elements = split_bytes(raw[i])
        else:
            elements = list(tensor.contents.bytes_contents)
        if len(elements) != count:
            raise InvalidInput(f"{TEXT} has {len(elements)} elements, shape "
                               f"{list(tensor.shape)} says {count}")
        try:
            texts = [e.decode("utf-8") for e in elements]
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{TEXT} element is not UTF-8: {exc.reason}") from None
    if texts is None:
        raise InvalidInput(f"input {TEXT} is missing")
    return texts, bool(raw)


def output_names(labels: Sequence[str], oos_score: bool = False) -> list[str]:
    if not labels:
        return [EMBEDDING]
    return [PROBABILITIES, EMBEDDING, INTENT, *([OOS_SCORE] if oos_score else [])]


def requested_outputs(request: pb.ModelInferRequest, labels: Sequence[str],
                      oos_score: bool = False) -> list[str]:
    offered = output_names(labels, oos_score)
    names = [o.name for o in request.outputs] or offered
    unknown = [n for n in names if n not in offered]
    if unknown:
        raise InvalidInput(f"unknown outputs {unknown}; this model offers {offered}")
    return names


def encode_outputs(result: TextOutputs, names: Sequence[str], raw: bool,
                   request_id: str) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(model_name=result.name, model_version=str(result.version),
                                     id=request_id)
    n = len(result.embeddings)
    for name in names:
        tensor = response.outputs.add(name=name)
        if name == INTENT:
            assert result.probabilities is not None
            top = np.argmax(result.probabilities, axis=1)
            elements = [result.labels[int(i)].encode() for i in top]
            tensor.datatype = "BYTES"
            tensor.shape.extend([n])
            if raw:
                response.raw_output_contents.append(join_bytes(elements))
            else:
                tensor.contents.bytes_contents.extend(elements)
            continue
        array = {EMBEDDING: result.embeddings, PROBABILITIES: result.probabilities,
                 OOS_SCORE: result.oos_scores}[name]
        if array is None:
            raise InvalidInput(f"{result.name}/{result.version} has no output {name}")
        if name == PROBABILITIES:
            tensor.parameters["labels"].string_param = json.dumps(result.labels)
        tensor.datatype = "FP32"
        tensor.shape.extend(array.shape)
        if raw:
            response.raw_output_contents.append(np.ascontiguousarray(array, "<f4").tobytes())
        else:
            tensor.contents.fp32_contents.extend(array.ravel().tolist())
    return response
