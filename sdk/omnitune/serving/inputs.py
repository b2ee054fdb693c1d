"""The inputs of a ``POST /predict`` body: JSON ``{"inputs": [...]}`` (images and audio as
``{"base64": ...}``) or a multipart form with one ``inputs`` field per input (file uploads for
images and audio). Files are written to a scratch folder and their paths go to the model; for
image and audio models nothing else is accepted, so a client can never make the server read its
own files."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from omnitune.errors import OmnituneError

FIELD = "inputs"
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}")


class InputError(OmnituneError):
    """A request input that is not what the model takes (answered with 422)."""


class TooManyInputs(OmnituneError):
    """More inputs in one request than the server allows (answered with 413)."""


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(min_length=1, description="Raw inputs: texts, user ids, or "
                              "{'base64': ...} for image and audio files.")


def body_docs() -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``POST /predict``: the JSON body or a multipart form."""
    files = {"type": "array", "items": {"type": "string", "format": "binary"},
             "description": "One field per input: a file upload (image, audio) or a text value."}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": PredictRequest.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "properties": {FIELD: files},
                                           "required": [FIELD]}}}}}


async def read_inputs(request: Request, file_inputs: bool, scratch: Path, max_inputs: int) -> list[Any]:
    """The request's inputs for the model: texts and ids as given, files as paths in ``scratch``."""
    if request.headers.get("content-type", "").startswith(FORMS):
        return await _form_inputs(request, file_inputs, scratch, max_inputs)
    try:
        body = PredictRequest.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in error.errors(include_url=False)]) from None
    _check_count(len(body.inputs), max_inputs)
    return [_json_input(index, item, file_inputs, scratch) for index, item in enumerate(body.inputs)]


async def _form_inputs(request: Request, file_inputs: bool, scratch: Path, max_inputs: int) -> list[Any]:
    form = await request.form(max_files=max_inputs + 1, max_fields=max_inputs + 1)
    unknown = sorted(set(form.keys()) - {FIELD})
    if unknown:
        raise InputError(f"multipart field(s) {', '.join(unknown)} not expected; send each input as a "
                         f"field named {FIELD!r}")
    values = form.getlist(FIELD)
    if not values:
        raise InputError(f"{FIELD}: missing; send one or more multipart fields named {FIELD!r}")
    _check_count(len(values), max_inputs)
    inputs = []
    for index, value in enumerate(values):
        if isinstance(value, UploadFile):
            if not file_inputs:
                raise InputError(f"{FIELD}[{index}]: this model takes text values, not a file upload "
                                 f"({value.filename!r})")
            inputs.append(_write(scratch, index, await value.read(), value.filename))
        elif file_inputs:
            raise InputError(f"{FIELD}[{index}]: expected a file upload for this model's image or audio "
                             "inputs, got a text value")
        else:
            inputs.append(value)
    return inputs


def _json_input(index: int, item: Any, file_inputs: bool, scratch: Path) -> Any:
    if isinstance(item, dict) and set(item) == {"base64"} and isinstance(item["base64"], str):
        try:
            data = base64.b64decode(item["base64"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise InputError(f"{FIELD}[{index}].base64: not valid base64 ({error})") from None
        return _write(scratch, index, data, None)
    if file_inputs:
        raise InputError(f"{FIELD}[{index}]: expected {{'base64': '<file bytes in base64>'}} (or a multipart "
                         f"file upload) for this model's image or audio inputs, got {type(item).__name__}")
    return item


def _check_count(count: int, max_inputs: int) -> None:
    if count > max_inputs:
        raise TooManyInputs(f"{FIELD}: {count} inputs, more than the limit of {max_inputs} per request")


def _write(scratch: Path, index: int, data: bytes, filename: str | None) -> str:
    """The file's bytes under a name of the server's making (only a short alphanumeric suffix of the
    client's file name is kept, for decoders that go by it)."""
    suffix = Path(filename or "").suffix
    if not SAFE_SUFFIX.fullmatch(suffix):
        suffix = ""
    path = scratch / f"input-{index}{suffix}"
    path.write_bytes(data)
    return str(path)
