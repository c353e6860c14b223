"""One router per resource; ``app.api.app.create_api`` includes them in this order."""

from app.api.routes import call_flows, calls, dashboard, devices, health

__all__ = ["call_flows", "calls", "dashboard", "devices", "health"]
