"""What Seldon Core v2's model gateway does, in MLServer's own venv, for the OIP source test.

Run by tests/integration/test_oip_sources.py with the python of `scripts/model-servers
mlserver`, so that the protobuf messages are built by MLServer's generated `dataplane_pb2`
(the OIP's gRPC messages, package `inference`) and answered by a real MLServer over gRPC.

    python seldon_v2_gateway.py SPEC.json RESULTS.json

SPEC names the broker, the model's inputs and outputs topics, MLServer's gRPC address and the
requests (key, request id, four feature values, raw or contents). The script first produces
each request as a serialized `ModelInferRequest` to the inputs topic (headers `x-request-id`
and `seldon-infer-type: proto/InferModelRequest`, as Seldon's pipeline gateway writes them),
then does the model gateway's job (seldon-core scheduler/pkg/kafka/gateway/worker.go): read
the inputs topic, send each request to the model server over gRPC with the model's name set,
and write the serialized `ModelInferResponse` to the outputs topic with the input's key and
headers. Values that are not a request of the spec (the test's bad messages) are skipped, as
the gateway would send them to its error topic. RESULTS gets each key's `predict_proba` row as
MLServer answered it (decoded here by the protobuf library and numpy) and whether the answer
came in `raw_output_contents`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from google.protobuf.message import DecodeError
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

TIMEOUT_SECONDS = 240


def build_request(item: dict[str, Any]) -> bytes:
    tensor = pb.ModelInferRequest.InferInputTensor(name="predict", datatype="FP32", shape=[1, 4])
    request = pb.ModelInferRequest(
        id=item["request_id"], inputs=[tensor],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="predict_proba")])
    values = np.array(item["values"], dtype="<f4")
    if item["raw"]:
        request.raw_input_contents.append(values.tobytes())
    else:
        request.inputs[0].contents.fp32_contents.extend(values.tolist())
    return request.SerializeToString()


def probabilities(response: Any) -> list[float]:
    output = response.outputs[0]
    if response.raw_output_contents:
        return np.frombuffer(response.raw_output_contents[0], dtype="<f8").tolist()
    return list(output.contents.fp64_contents)


async def main(spec_path: Path, results_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    items = {item["key"]: item for item in spec["requests"]}
    producer = AIOKafkaProducer(bootstrap_servers=spec["bootstrap"], acks="all")
    await producer.start()
    try:
        for item in spec["requests"]:
            await producer.send(spec["inputs"], build_request(item), key=item["key"].encode(),
                                headers=[("x-request-id", item["request_id"].encode()),
                                         ("seldon-infer-type", b"proto/InferModelRequest")])
        await producer.flush()
        consumer = AIOKafkaConsumer(spec["inputs"], bootstrap_servers=spec["bootstrap"],
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(spec["grpc"]))
        results: dict[str, dict[str, Any]] = {}
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                async for message in consumer:
                    key = (message.key or b"").decode()
                    if key not in items or key in results:
                        continue
                    request = pb.ModelInferRequest()
                    try:
                        request.ParseFromString(message.value)
                    except DecodeError:
                        continue
                    request.model_name = spec["model"]  # the gateway sets the model's name
                    response = stub.ModelInfer(request, timeout=30)
                    await producer.send(spec["outputs"], response.SerializeToString(),
                                        key=message.key, headers=list(message.headers))
                    results[key] = {"proba": probabilities(response),
                                    "raw": bool(response.raw_output_contents)}
                    if len(results) == len(items):
                        break
        finally:
            await consumer.stop()
        await producer.flush()
    finally:
        await producer.stop()
    results_path.write_text(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
