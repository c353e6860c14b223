"""What the route handlers are given (FastAPI dependencies): the running Hold Slayer and its parts.

``create_api`` puts the ``HoldSlayer`` on ``app.state``; handlers ask for it, or for its store or
call manager, by type (``runtime: Runtime``), so a test can override one dependency at a time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.calls.manager import CallManager
from app.runtime import HoldSlayer
from app.store.repository import Store


def get_runtime(request: Request) -> HoldSlayer:
    return request.app.state.holdslayer


def get_store(runtime: Annotated[HoldSlayer, Depends(get_runtime)]) -> Store:
    return runtime.store


def get_manager(runtime: Annotated[HoldSlayer, Depends(get_runtime)]) -> CallManager:
    return runtime.manager


Runtime = Annotated[HoldSlayer, Depends(get_runtime)]
StoreDep = Annotated[Store, Depends(get_store)]
Manager = Annotated[CallManager, Depends(get_manager)]
