"""Domain errors as HTTP errors."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.api.actions import ActionError
from app.api.schemas import field_error
from app.calls.manager import CallRequestError


async def _bad_call_request(request: Request, exc: CallRequestError) -> JSONResponse:
    # Same shape as FastAPI's own validation errors, so clients parse one format.
    return JSONResponse(status_code=422, content={"detail": field_error(exc.field, exc.message)})


async def _action_failed(request: Request, exc: ActionError) -> JSONResponse:
    detail = field_error(exc.field, exc.message) if exc.field else exc.message
    return JSONResponse(status_code=exc.status, content={"detail": detail})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CallRequestError, _bad_call_request)
    app.add_exception_handler(ActionError, _action_failed)
