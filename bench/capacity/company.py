"""The company every capacity call phones: straight into a hold that outlasts the run.

Music with a queue announcement every 45 s (a hold as callers meet it), no menu, no person:
the call stays on hold until the benchmark hangs it up. The flow (HOLD, then TRANSFER) lets the
app wait without a speech-to-text stream, as a call whose menu is known does.
"""

from __future__ import annotations

from pathlib import Path

NUMBER = "5559900"
HOLD_SECONDS = 24 * 3600.0
ANNOUNCE_EVERY_SECONDS = 45.0

SCENARIO = {
    "name": "Capacity Hold Company",
    "number": NUMBER,
    "ring_seconds": 1,
    "start": "queue",
    "nodes": {
        "queue": {
            "kind": "hold",
            "music": "moh:macroform-the_simplicity",
            "seconds": HOLD_SECONDS,
            "announcements": [
                {"at_seconds": 10, "every_seconds": ANNOUNCE_EVERY_SECONDS, "audio": ["prompt:queue-thankyou"]}
            ],
            "next": "agent",
        },
        "agent": {"kind": "agent", "greeting": ["prompt:hello"]},
    },
}

FLOW_YAML = f"""\
id: capacity-hold
name: Capacity Hold Company - straight to hold
company: Capacity Hold Company
phone_number: "{NUMBER}"
version: 1
steps:
  - id: hold
    type: HOLD
    description: Wait on hold for a live person
  - id: transfer
    type: TRANSFER
    description: Greet the agent and bridge the user's phone
"""


def write_flow(flows_dir: Path) -> Path:
    flows_dir.mkdir(parents=True, exist_ok=True)
    path = flows_dir / "capacity-hold.yaml"
    path.write_text(FLOW_YAML)
    return path
