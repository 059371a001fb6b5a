"""The framework floor for benchmarks/serving.py: a BentoML endpoint that does no work.

    bentoml serve --working-dir benchmarks noop_service:NoopService

``noop`` takes the same request body as ``classify`` (``{"windows": ...}``, parsed by BentoML
and pydantic as ``Any``, not decoded or checked) and answers a one-element JSON list, so its
requests/s is what BentoML itself allows on this machine. It is served the way the product
service is: ``HAR_WORKERS``, ``HAR_ACCESS_LOG`` and ``HAR_METRICS`` when set, keep-alive rotation
(``HAR_KEEPALIVE_REQUESTS``, :mod:`har_runtime.connections`) (unset: BentoML's
defaults, which are the product service's defaults too: 1 worker, access log and metrics on),
the same traffic settings and an explicit output content type. It is not batchable: adaptive
batching is part of what ``classify`` costs, not of the floor.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import bentoml
from bentoml.validators import ContentType

from har_runtime.connections import RotateConnections

SETTINGS: dict[str, Any] = {"traffic": {"timeout": 30, "max_concurrency": 512}}
if "HAR_WORKERS" in os.environ:
    SETTINGS["workers"] = int(os.environ["HAR_WORKERS"])
if "HAR_ACCESS_LOG" in os.environ:
    SETTINGS["logging"] = {"access": {"enabled": os.environ["HAR_ACCESS_LOG"] != "0"}}
if "HAR_METRICS" in os.environ:
    SETTINGS["metrics"] = {"enabled": os.environ["HAR_METRICS"] != "0"}

ANSWER = [{"label": "noop"}]


@bentoml.service(name="noop-floor", **SETTINGS)
class NoopService:
    @bentoml.api
    async def noop(self, windows: Any) -> Annotated[list[dict[str, Any]], ContentType("application/json")]:
        return ANSWER


NoopService.add_asgi_middleware(RotateConnections)  # as the product service (HAR_KEEPALIVE_REQUESTS)
