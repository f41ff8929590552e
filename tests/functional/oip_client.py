"""Run by test_inference_v2.py in a subprocess: the real `tritonclient` against our
server. (Its generated `inference` protos clash with ours in one process.)

Usage: python oip_client.py HOST:PORT TEXT...  -> one JSON document on stdout.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient


def main(address: str, texts: list[str]) -> dict:
    client = grpcclient.InferenceServerClient(url=address)
    out: dict = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "classifier_ready": client.is_model_ready("intent-classifier"),
        "unknown_ready": client.is_model_ready("no-such-model"),
        "metadata": {name: client.get_model_metadata(name, as_json=True)
                     for name in ("intent-classifier", "minilm-embedder")},
    }
    for name, outputs in (("intent-classifier", ["PROBABILITIES", "EMBEDDING", "INTENT"]),
                          ("minilm-embedder", ["EMBEDDING"])):
        tensor = grpcclient.InferInput("TEXT", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=np.object_))
        result = client.infer(name, [tensor],
                              outputs=[grpcclient.InferRequestedOutput(o) for o in outputs])
        out[name] = {
            o: ([v.decode() for v in result.as_numpy(o)] if o == "INTENT"
                else result.as_numpy(o).tolist())
            for o in outputs
        }
        out[name]["model_version"] = result.get_response().model_version
    config = client.get_model_config("intent-classifier", as_json=True)
    out["labels"] = json.loads(config["config"]["parameters"]["labels"]["string_value"])
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))
