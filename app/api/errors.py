"""Domain errors as HTTP errors."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.api.schemas import field_error
from app.calls.manager import CallRequestError


async def _bad_call_request(request: Request, exc: CallRequestError) -> JSONResponse:
    # Same shape as FastAPI's own validation errors, so clients parse one format.
    return JSONResponse(status_code=422, content={"detail": field_error(exc.field, exc.message)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CallRequestError, _bad_call_request)
