"""Event ids derived from requests, and feature names from a model's metadata endpoint."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any, Final

from driftline_sidecar.payloads._common import _load

_EVENT_ID_NAMESPACE: Final = uuid.UUID("4c3f7c1e-9a51-5d0e-8f51-6a1d0e5b7d21")


def row_event_id(model: str, request_id: str, row: int) -> str:
    """The event id of row `row` of request `request_id` to `model`: the same on every delivery.

    A name-based (version 5) UUID as 32 hex digits, like the random ids of `new_event_id`, so a
    request logged twice (a retried delivery, a replayed topic) is stored once by the collector,
    whose store is idempotent on event ids. The model is part of the name because request ids
    are only unique per client, and two models may see the same one.

    Examples:
        >>> row_event_id("iris", "req-1", 0)
        '5f66eff322f15936839e9ed09c7f894f'
    """
    # uuid.uuid5 by hand (RFC 9562 section 5.5), a third of its cost: it runs once per row.
    digest = bytearray(hashlib.sha1(  # noqa: S324 - a name-based UUID, not a security use
        _EVENT_ID_NAMESPACE.bytes + f"{model}\x1f{request_id}\x1f{row}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC variant
    return digest.hex()


def row_event_ids(model: str, request_id: str, n_rows: int) -> list[str]:
    """`row_event_id` of rows 0 to `n_rows - 1`, the common prefix hashed once.

    Examples:
        >>> row_event_ids("iris", "req-1", 2)[1] == row_event_id("iris", "req-1", 1)
        True
    """
    prefix = hashlib.sha1(  # noqa: S324 - a name-based UUID, not a security use
        _EVENT_ID_NAMESPACE.bytes + f"{model}\x1f{request_id}\x1f".encode())
    ids = []
    for row in range(n_rows):
        hashed = prefix.copy()
        hashed.update(str(row).encode())
        digest = bytearray(hashed.digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        ids.append(digest.hex())
    return ids


def _one_column(shape: Any) -> bool:
    """True for a metadata tensor shape of one value per row: [-1], [-1, 1], [1]."""
    if not isinstance(shape, list) or not shape:
        return False
    dims = [int(d) if isinstance(d, int | str) and str(d).lstrip("-").isdigit() else None
            for d in shape[1:]]
    return all(d == 1 for d in dims)


def feature_names_from_metadata(protocol: str, body: Any) -> list[str] | None:
    """Feature names from a model's metadata, when its inputs are one column each.

    ``v2`` reads ``GET /v2/models/{name}``: the names of ``inputs`` whose shape is one value per
    row (``[-1]``, ``[-1, 1]``), in order (MLServer declares them in model-settings.json). ``v1``
    reads TensorFlow Serving's ``GET /v1/models/{name}/metadata``: the inputs of the
    ``serving_default`` signature (or the only one), whose order is the map's as the server sent
    it. A tensor of several columns per row has no column names: None then.

    Args:
        protocol: ``"v1"`` or ``"v2"``; any other gives None.
        body: The metadata response: parsed JSON, or its bytes or text.

    Returns:
        The names, or None when the metadata names no columns.

    Raises:
        PayloadError: When the body is not JSON.

    Examples:
        >>> feature_names_from_metadata("v2", {"name": "iris", "inputs": [
        ...     {"name": "age", "datatype": "INT64", "shape": [-1, 1]},
        ...     {"name": "city", "datatype": "BYTES", "shape": [-1]}]})
        ['age', 'city']
        >>> feature_names_from_metadata("v2", {"inputs": [
        ...     {"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]}) is None
        True
    """
    body = _load(body)
    if not isinstance(body, Mapping):
        return None
    if protocol == "v2":
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            return None
        names = [tensor.get("name") for tensor in inputs if isinstance(tensor, Mapping)]
        if len(names) != len(inputs) or not all(isinstance(n, str) and n for n in names):
            return None
        if not all(_one_column(tensor.get("shape")) for tensor in inputs):
            return None
        return [str(name) for name in names]
    if protocol == "v1":
        metadata = body.get("metadata")
        signatures = metadata.get("signature_def") if isinstance(metadata, Mapping) else None
        if isinstance(signatures, Mapping) and "signature_def" in signatures:
            signatures = signatures["signature_def"]
        if not isinstance(signatures, Mapping) or not signatures:
            return None
        signature = signatures.get("serving_default")
        if signature is None and len(signatures) == 1:
            signature = next(iter(signatures.values()))
        inputs = signature.get("inputs") if isinstance(signature, Mapping) else None
        if not isinstance(inputs, Mapping) or not inputs:
            return None
        for spec in inputs.values():
            dims = spec.get("tensor_shape", {}).get("dim") if isinstance(spec, Mapping) else None
            if not isinstance(dims, list) or not all(isinstance(d, Mapping) for d in dims):
                return None
            if not _one_column([d.get("size") for d in dims] or [-1]):
                return None
        return [str(name) for name in inputs]
    return None
