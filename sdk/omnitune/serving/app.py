"""The HTTP server: FastAPI + uvicorn over a ``Bundle`` or a PyTorch artifact.

``POST /predict`` ``{"inputs": [...]}`` -> ``{"predictions": [...]}`` (the Predictor's dicts; images
and audio as ``{"base64": "..."}`` or multipart uploads), ``POST /generate`` for causal-LM
artifacts (``generate.py``), ``GET /health``, ``GET /metadata``, OpenAPI at ``/docs``.
Concurrent requests are batched (``Batcher``); a bad input is a 4xx naming ``inputs[i]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from omnitune.errors import OmnituneError
from omnitune.serving.batcher import Batcher
from omnitune.serving.generate import add_generate_route
from omnitune.serving.inputs import TooManyInputs, body_docs, read_inputs
from omnitune.serving.models import ServedModel, load_model

log = logging.getLogger("omnitune")
SETTINGS_ENV = "OMNITUNE_SERVE_SETTINGS"


class ServeSettings(BaseModel):
    """How ``omnitune serve`` runs: the model and the batching and size limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Bundle folder or PyTorch artifact folder.")
    variant: str = Field("fp32", description="Bundle model: fp32 or int8.")
    batching: bool = Field(True, description="Gather concurrent requests into batches.")
    max_batch_size: int = Field(32, ge=1, description="Most inputs in one batch.")
    max_wait_ms: float = Field(5.0, ge=0, description="Longest a request waits for others to join.")
    max_inputs: int = Field(256, ge=1, description="Most inputs in one request.")
    max_body_bytes: int = Field(16 * 2**20, ge=1024, description="Largest request body.")


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]]


def create_app(model: ServedModel, settings: ServeSettings) -> FastAPI:
    """The FastAPI app serving ``model``; a plain object that tests drive directly."""
    batcher = Batcher(model.predict, settings.max_batch_size, settings.max_wait_ms / 1000)
    one_at_a_time = asyncio.Lock()
    in_flight = [0]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.run()) if settings.batching else None
        yield
        if worker is not None:
            worker.cancel()

    app = FastAPI(title="omnitune", lifespan=lifespan,
                  description=f"Predictions of a fine-tuned {model.metadata()['task']} model.")

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and int(length) > settings.max_body_bytes:
            return JSONResponse({"detail": f"request body of {length} bytes is larger than the limit of "
                                 f"{settings.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(OmnituneError)
    async def bad_input(_: Request, error: OmnituneError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(TooManyInputs)
    async def too_many(_: Request, error: TooManyInputs) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=413)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "in_flight": in_flight[0]}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return model.metadata() | {"batching": settings.model_dump(exclude={"path"})}

    @app.post("/predict", response_model=PredictResponse, openapi_extra=body_docs())
    async def predict(request: Request) -> Any:
        in_flight[0] += 1
        try:
            with tempfile.TemporaryDirectory(prefix="omnitune-serve-") as scratch:
                inputs = await read_inputs(request, model.file_inputs, Path(scratch), settings.max_inputs)
                if settings.batching:
                    return {"predictions": await batcher.submit(inputs)}
                async with one_at_a_time:
                    return {"predictions": await asyncio.to_thread(model.predict, inputs)}
        finally:
            in_flight[0] -= 1

    add_generate_route(app, model)
    app.state.batcher = batcher
    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (one per worker process): settings from the environment."""
    settings = ServeSettings.model_validate(json.loads(os.environ[SETTINGS_ENV]))
    return create_app(load_model(settings.path, settings.variant), settings)
