"""Cost of reading Seldon Core v2's protobuf messages with our wire reader, against protobuf's.

    python bench/oip_proto.py [--repeats N] [--json]

`collector.sources.oip_proto` reads ModelInferRequest / ModelInferResponse in pure Python so
that the service needs no protobuf runtime. The baseline, measured in the same run on the same
bytes, is the protobuf library (its C `upb` backend when installed, the default) parsing the
message and building the same OIP JSON dict from its fields, with numpy for raw contents: what
the service would do with the dependency. Messages: one row of four FP32 features (Seldon's
iris example) in `contents` and raw, a batch of 100 rows of 30 FP64 features raw and in
`contents`, and a response of 100 rows of 3 FP64 class scores raw. Reports microseconds per
message (median of N repeats) and the ratio ours / protobuf's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.internal import api_implementation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.sources.oip_proto import decode_infer_request, decode_infer_response
from tests.unit.collector.oip_messages import message_classes

PB = message_classes()
_FIELDS = {"BOOL": "bool_contents", "INT32": "int_contents", "INT64": "int64_contents",
           "FP32": "fp32_contents", "FP64": "fp64_contents"}
_DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4", "BOOL": "?"}


def _request(rows: int, width: int, datatype: str, raw: bool) -> bytes:
    rng = np.random.default_rng(7)
    values = rng.normal(size=(rows, width)).astype(_DTYPES[datatype])
    message = PB["ModelInferRequest"](model_name="iris", id="req-1")
    tensor = message.inputs.add(name="predict", datatype=datatype, shape=[rows, width])
    if raw:
        message.raw_input_contents.append(values.tobytes())
    else:
        getattr(tensor.contents, _FIELDS[datatype]).extend(values.ravel().tolist())
    return bytes(message.SerializeToString())


def _response(rows: int, width: int) -> bytes:
    values = np.random.default_rng(8).dirichlet(np.ones(width), size=rows)
    message = PB["ModelInferResponse"](model_name="iris", model_version="1", id="req-1")
    message.outputs.add(name="predict_proba", datatype="FP64", shape=[rows, width])
    message.raw_output_contents.append(values.tobytes())
    return bytes(message.SerializeToString())


def _tensors(tensors: Any, raw: Any) -> list[dict[str, Any]]:
    out = []
    for i, tensor in enumerate(tensors):
        if raw:
            data = np.frombuffer(raw[i], dtype=_DTYPES[tensor.datatype]).tolist()
        else:
            data = list(getattr(tensor.contents, _FIELDS[tensor.datatype]))
        out.append({"name": tensor.name, "datatype": tensor.datatype,
                    "shape": list(tensor.shape), "data": data})
    return out


def protobuf_request(data: bytes) -> dict[str, Any]:
    """The baseline: protobuf parses, then the same dict is built from its fields."""
    message = PB["ModelInferRequest"].FromString(data)
    return {"model_name": message.model_name, "id": message.id,
            "inputs": _tensors(message.inputs, message.raw_input_contents)}


def protobuf_response(data: bytes) -> dict[str, Any]:
    message = PB["ModelInferResponse"].FromString(data)
    return {"model_name": message.model_name, "model_version": message.model_version,
            "id": message.id, "outputs": _tensors(message.outputs, message.raw_output_contents)}


def _time(function: Callable[[bytes], Any], data: bytes, repeats: int) -> float:
    """Median microseconds per call over `repeats` rounds of enough calls to last ~20 ms."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            function(data)
        if time.perf_counter() - start > 0.02:
            break
        calls *= 2
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function(data)
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cases = [
        ("request 1x4 FP32 contents", _request(1, 4, "FP32", False), "request"),
        ("request 1x4 FP32 raw", _request(1, 4, "FP32", True), "request"),
        ("request 100x30 FP64 contents", _request(100, 30, "FP64", False), "request"),
        ("request 100x30 FP64 raw", _request(100, 30, "FP64", True), "request"),
        ("response 100x3 FP64 raw", _response(100, 3), "response"),
    ]
    results = []
    for name, data, kind in cases:
        ours_fn = decode_infer_request if kind == "request" else decode_infer_response
        theirs_fn = protobuf_request if kind == "request" else protobuf_response
        ours_dict, theirs_dict = ours_fn(data), theirs_fn(data)
        side = "inputs" if kind == "request" else "outputs"
        if ours_dict[side][0]["data"] != theirs_dict[side][0]["data"]:
            raise SystemExit(f"{name}: the two readers disagree")
        ours = _time(ours_fn, data, args.repeats)
        theirs = _time(theirs_fn, data, args.repeats)
        results.append({"case": name, "bytes": len(data), "ours_us": round(ours, 2),
                        "protobuf_us": round(theirs, 2), "ratio": round(ours / theirs, 2)})
    if args.json:
        print(json.dumps({"protobuf_backend": api_implementation.Type(), "results": results}))
        return
    print(f"protobuf backend: {api_implementation.Type()} (baseline)")
    print(f"{'case':32} {'bytes':>7} {'ours us':>9} {'protobuf us':>12} {'ratio':>6}")
    for r in results:
        print(f"{r['case']:32} {r['bytes']:>7} {r['ours_us']:>9} {r['protobuf_us']:>12} "
              f"{r['ratio']:>6}")


if __name__ == "__main__":
    main()
