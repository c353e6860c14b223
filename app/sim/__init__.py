"""A simulated Asterisk 22 for CI and the demo: real ARI (HTTP + WebSocket) and real RTP (UDP).

Companies are scenario files (``scenarios/*.yaml``); see ``scenarios/README.md`` for the format
and ``server.SimulatedPBX`` for the API tests use.
"""

from app.sim.farend import CompanyCallLog, UserCallLog
from app.sim.phone import UserPhoneConfig
from app.sim.scenario import Scenario, ScenarioError, load_scenarios
from app.sim.server import SimConfig, SimulatedPBX, run_sim

__all__ = [
    "CompanyCallLog",
    "Scenario",
    "ScenarioError",
    "SimConfig",
    "SimulatedPBX",
    "UserCallLog",
    "UserPhoneConfig",
    "load_scenarios",
    "run_sim",
]
