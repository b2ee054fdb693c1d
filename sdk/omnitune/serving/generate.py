"""``POST /generate``: a causal-LM artifact's answer to a prompt or a conversation, whole
(``{"generated_text": ...}``) or streamed as server-sent events (``"stream": true``): one
``data: {"text": "<piece>"}`` event per decoded piece, then ``data: [DONE]``.
Generations run one at a time (a CPU or GPU serves one well); others wait their turn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from omnitune.serving.models import ServedModel

OPTIONS = ("max_new_tokens", "temperature", "top_p", "stop")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | list[Message] = Field(description="One user turn, or OpenAI-style messages.")
    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Else the artifact's setting.")
    temperature: float | None = Field(None, ge=0, le=10, description="0: greedy; else sampling.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus mass when sampling.")
    stop: list[str] | None = Field(None, description="Generation ends at any of these strings.")
    stream: bool = Field(False, description="Server-sent events, one per piece, instead of one answer.")


class GenerateResponse(BaseModel):
    generated_text: str


def add_generate_route(app: FastAPI, model: ServedModel) -> None:
    """Register ``POST /generate``; for a model whose task does not generate it answers 422."""
    task = getattr(getattr(model, "predictor", None), "task", None)
    stream_chat = getattr(task, "stream_chat", None)
    turn = asyncio.Semaphore(1)

    def pieces(body: GenerateRequest) -> Iterator[str]:
        options = task.config.model_copy(update=body.model_dump(include=set(OPTIONS), exclude_none=True))
        history = ([{"role": "user", "content": body.prompt}] if isinstance(body.prompt, str)
                   else [message.model_dump() for message in body.prompt])
        return stream_chat(history, options)

    async def events(body: GenerateRequest) -> AsyncIterator[str]:
        async with turn:
            generated = pieces(body)
            while (piece := await asyncio.to_thread(next, generated, None)) is not None:
                yield f"data: {json.dumps({'text': piece})}\n\n"
        yield "data: [DONE]\n\n"

    @app.post("/generate", response_model=GenerateResponse,
              responses={200: {"content": {"text/event-stream": {}}}})
    async def generate(body: GenerateRequest) -> Any:
        if stream_chat is None:
            return JSONResponse({"detail": "POST /generate: this model does not generate text (it works "
                                 "with causal-lm PyTorch artifacts); use POST /predict"}, status_code=422)
        if body.stream:
            return StreamingResponse(events(body), media_type="text/event-stream")
        async with turn:
            return {"generated_text": await asyncio.to_thread(lambda: "".join(pieces(body)))}
