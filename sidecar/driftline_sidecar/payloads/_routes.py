"""REST paths of the model servers: which protocol, model, version and kind of call."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

from driftline_sidecar.payloads._common import Protocol, Route, RouteKind

_NAME = r"(?P<model>[^/:]+)"
_V1_VERSION = r"(?:/(?:versions|labels)/(?P<version>[^/:]+))?"
_V2_VERSION = r"(?:/versions/(?P<version>[^/]+))?"
_ROUTES: Final[tuple[tuple[str, re.Pattern[str], Protocol, RouteKind], ...]] = (
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:predict"), "v1", "infer"),
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:explain"), "v1", "explain"),
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:classify"), "v1", "classify"),
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:regress"), "v1", "regress"),
    ("GET", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}/metadata"), "v1", "metadata"),
    ("GET", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}"), "v1", "status"),
    ("POST", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}/infer"), "v2", "infer"),
    ("POST", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}/generate(?:_stream)?"), "v2",
     "generate"),
    ("GET", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}/ready"), "v2", "ready"),
    ("GET", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}"), "v2", "metadata"),
    ("GET", re.compile(r"/v2/health/(?:live|ready)"), "v2", "health"),
    ("GET", re.compile(r"/v2"), "v2", "server_metadata"),
    ("POST", re.compile(r"/invocations"), "mlflow", "infer"),
    ("GET", re.compile(r"/(?:ping|health)"), "mlflow", "health"),
    ("POST", re.compile(r"(?:/seldon/[^/]+/(?P<model>[^/]+))?/api/v1\.0/predictions"),
     "seldon", "infer"),
    ("POST", re.compile(r"(?:/seldon/[^/]+/(?P<model>[^/]+))?/api/v1\.0/feedback"),
     "seldon", "feedback"),
)


def route(method: str, path: str) -> Route | None:
    """What a request is, from its method and path (a query string is ignored).

    Inference is ``POST``; metadata, status and health are ``GET``. Seldon Core v1's ingress
    paths ``/seldon/{namespace}/{deployment}/api/v1.0/predictions`` name the deployment as the
    model. TF Serving's ``/labels/{label}`` is returned as the version.

    Args:
        method: The HTTP method, any case.
        path: The request path, percent-encoded as sent.

    Returns:
        The route, or None for any other method and path.

    Examples:
        >>> route("POST", "/v1/models/fraud:predict")
        Route(protocol='v1', model='fraud', version=None, kind='infer')
        >>> route("GET", "/v2/models/fraud/versions/2").kind
        'metadata'
        >>> route("GET", "/v1/models/fraud:predict") is None
        True
    """
    method = method.upper()
    path = path.split("?", 1)[0]
    if len(path) > 1:
        path = path.rstrip("/")
    for wanted, pattern, protocol, kind in _ROUTES:
        if method != wanted:
            continue
        match = pattern.fullmatch(path)
        if match is None:
            continue
        groups = match.groupdict()
        model, version = groups.get("model"), groups.get("version")
        return Route(protocol, None if model is None else unquote(model),
                     None if version is None else unquote(version), kind)
    return None

