"""inference.GRPCInferenceService servicer: the Open Inference Protocol v2 beside our API.

Same port, same registry, same batchers as Classify/Embed. Repository calls map onto
the model lifecycle: RepositoryModelLoad = ActivateModel of the newest (or the
`version` parameter's) version, RepositoryModelUnload = UnloadModel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata

from grpc import aio

from aftercare.inference.v2 import grpc_service_pb2 as pb
from aftercare.inference.v2 import grpc_service_pb2_grpc as pb_grpc
from server.api.audit import actor_of
from server.api.oip_tensors import (
    EMBEDDING,
    INTENT,
    OOS_SCORE,
    PROBABILITIES,
    TEXT,
    decode_texts,
    encode_outputs,
    requested_outputs,
)
from server.errors import InvalidInput, NotFound
from server.inference.encoder import has_oos_score
from server.inference.lifecycle import ModelLifecycle
from server.inference.registry import ACTIVE, CLASSIFIER, EMBEDDER, ModelEntry, ModelRegistry
from server.inference.service import InferenceService, deadline_from_timeout

PLATFORM = "onnxruntime_onnx"
_INDEX_STATE = {"ACTIVE": "READY", "READY": "READY", "LOADING": "LOADING",
                "DRAINING": "UNLOADING", "FAILED": "UNAVAILABLE", "UNLOADED": "UNAVAILABLE"}


def _version(text: str) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise InvalidInput(f"model version must be a positive integer, not {text!r}")
    return int(text)


def _param_version(params: Mapping[str, pb.ModelRepositoryParameter]) -> int:
    if "version" not in params:
        return 0
    value = params["version"]
    kind = value.WhichOneof("parameter_choice")
    return _version(str(value.int64_param if kind == "int64_param" else value.string_param))


class InferenceV2Servicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, inference: InferenceService, registry: ModelRegistry,
                 lifecycle: ModelLifecycle) -> None:
        self._inference = inference
        self._registry = registry
        self._lifecycle = lifecycle

    def _entry(self, name: str, version_text: str) -> ModelEntry:
        version = _version(version_text)
        if not version:
            active = next((m for m in self._registry.active().values() if m.name == name), None)
            version = active.version if active else 0
        entry = self._registry.entry(name, version)
        if entry is None or entry.model is None:
            raise NotFound(f"model {name!r} version {version_text or '(active)'} is not loaded")
        return entry

    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest,
                          context: aio.ServicerContext) -> pb.ServerReadyResponse:
        roles = self._registry.active()
        return pb.ServerReadyResponse(ready=CLASSIFIER in roles and EMBEDDER in roles)

    async def ModelReady(self, request: pb.ModelReadyRequest,
                         context: aio.ServicerContext) -> pb.ModelReadyResponse:
        try:
            entry = self._entry(request.name, request.version)
        except NotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=entry.state in ("READY", ACTIVE))

    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: aio.ServicerContext) -> pb.ServerMetadataResponse:
        try:
            version = metadata.version("aftercare")
        except metadata.PackageNotFoundError:
            version = "0"
        return pb.ServerMetadataResponse(name="aftercare", version=version,
                                         extensions=["model_repository"])

    def _tensors(self, entry: ModelEntry) -> tuple[list, list]:
        assert entry.model is not None
        labels = entry.model.manifest.get("labels", [])
        dim = int(entry.model.manifest.get("embedding_dim", -1))
        inputs = [(TEXT, "BYTES", [-1])]
        outputs = [(EMBEDDING, "FP32", [-1, dim])]
        if labels:
            outputs = [(PROBABILITIES, "FP32", [-1, len(labels)]), *outputs,
                       (INTENT, "BYTES", [-1])]
            if has_oos_score(entry.model.manifest):
                outputs.append((OOS_SCORE, "FP32", [-1]))
        return inputs, outputs

    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: aio.ServicerContext) -> pb.ModelMetadataResponse:
        entry = self._entry(request.name, request.version)
        inputs, outputs = self._tensors(entry)
        versions = [str(e.version) for e in self._registry.entries()
                    if e.name == entry.name and e.model is not None]
        meta = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=entry.name, versions=versions, platform=PLATFORM,
            inputs=[meta(name=n, datatype=d, shape=s) for n, d, s in inputs],
            outputs=[meta(name=n, datatype=d, shape=s) for n, d, s in outputs],
        )

    async def ModelConfig(self, request: pb.ModelConfigRequest,
                          context: aio.ServicerContext) -> pb.ModelConfigResponse:
        entry = self._entry(request.name, request.version)
        assert entry.model is not None
        inputs, outputs = self._tensors(entry)
        types = {"BYTES": pb.TYPE_STRING, "FP32": pb.TYPE_FP32}
        config = pb.ModelConfig(
            name=entry.name, platform=PLATFORM, backend="onnxruntime", max_batch_size=0,
            input=[pb.ModelInput(name=n, data_type=types[d], dims=s) for n, d, s in inputs],
            output=[pb.ModelOutput(name=n, data_type=types[d], dims=s) for n, d, s in outputs],
        )
        labels = entry.model.manifest.get("labels")
        if labels:
            config.parameters["labels"].string_value = json.dumps(labels)
        return pb.ModelConfigResponse(config=config)

    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: aio.ServicerContext) -> pb.ModelInferResponse:
        texts, raw = decode_texts(request)
        entry = self._entry(request.model_name, request.model_version)
        manifest = entry.model.manifest if entry.model else {}
        names = requested_outputs(request, manifest.get("labels", []), has_oos_score(manifest))
        result = await self._inference.infer_texts(
            entry.name, entry.version, texts, deadline_from_timeout(context.time_remaining()))
        return encode_outputs(result, names, raw, request.id)

    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest,
                              context: aio.ServicerContext) -> pb.RepositoryIndexResponse:
        index = pb.RepositoryIndexResponse.ModelIndex
        models = [index(name=e.name, version=str(e.version), state=_INDEX_STATE[e.state],
                        reason=e.error) for e in self._registry.entries()]
        if request.ready:
            models = [m for m in models if m.state == "READY"]
        return pb.RepositoryIndexResponse(models=models)

    async def RepositoryModelLoad(self, request: pb.RepositoryModelLoadRequest,
                                  context: aio.ServicerContext
                                  ) -> pb.RepositoryModelLoadResponse:
        version = _param_version(request.parameters)
        if not version:
            version = self._lifecycle.repository.latest(request.model_name).version
        await self._lifecycle.activate(request.model_name, version, actor_of(context))
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request: pb.RepositoryModelUnloadRequest,
                                    context: aio.ServicerContext
                                    ) -> pb.RepositoryModelUnloadResponse:
        version = _param_version(request.parameters)
        versions = [version] if version else [
            e.version for e in self._registry.entries()
            if e.name == request.model_name and e.model is not None and e.state != ACTIVE]
        for v in versions:
            await self._lifecycle.unload(request.model_name, v, actor_of(context))
        return pb.RepositoryModelUnloadResponse()
