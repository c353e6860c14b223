"""What a call is asked to do and how it can end: plain data, no I/O."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field, field_validator

from app.phone import normalize_phone_number


class CallStatus(str, Enum):
    PENDING = "pending"
    DIALING = "dialing"
    RINGING = "ringing"
    NAVIGATING = "navigating"  # answered; following the phone menu
    ON_HOLD = "on_hold"
    HUMAN_DETECTED = "human_detected"
    TRANSFERRING = "transferring"  # ringing the user's device
    CONNECTED = "connected"  # user and agent bridged
    # final
    COMPLETED = "completed"  # the user was bridged to the agent; the call has since ended
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({CallStatus.COMPLETED, CallStatus.FAILED, CallStatus.CANCELLED})

# Every ARI id a call creates starts with this, so that a restart can tell (and sweep) what an
# earlier run of this app left in the PBX.
ARI_ID_PREFIX = "hs-"


class EndReason(str, Enum):
    BRIDGED = "bridged"  # success: user talked to the agent
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    NOT_IN_SERVICE = "not_in_service"
    CONGESTION = "congestion"  # all circuits busy / network failure
    COMPANY_HANGUP = "company_hangup"
    USER_NO_ANSWER = "user_no_answer"
    MAX_HOLD_TIME = "max_hold_time"
    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"  # Hold Slayer was stopped (SIGTERM, Ctrl-C) and hung the call up
    FLOW_FAILED = "flow_failed"
    ERROR = "error"  # a fault inside the app (a crashed call task, an unexpected PBX answer)
    PBX_LOST = "pbx_lost"  # the PBX stopped, restarted or stayed unreachable: not the company's doing
    APP_RESTARTED = "app_restarted"  # the app stopped without ending the call; found at the next start
    WORKER_LOST = "worker_lost"  # the worker process running the call died (serve --workers N)


class RecordingChannel(str, Enum):
    """The recordings a call keeps (``app.calls.recordings``)."""

    FAR_END = "far_end"  # the company as the app heard it (hold bridge, then the snoop)
    APP = "app"  # what the app said to the company, on the far end's timeline
    MIXED = "mixed"  # the two above mixed: the call as heard from the app's seat
    BRIDGED = "bridged"  # Asterisk's recording of the main bridge: the user and the person


class CallRequest(BaseModel):
    """A request to call a company and reach a person for the user."""

    number: str = Field(..., description="Number to dial: digits, optional leading +")
    intent: str = Field("", max_length=2000, description="What the user wants, in their words")
    device: str | None = Field(None, description="The user's device to ring (GET /api/devices); default: the default device")
    flow_id: str | None = Field(None, description="Call flow to follow; default: the stored flow for the number")
    user_data: dict[str, str] = Field(
        default_factory=dict, description="Values a phone menu may be given: account_number, zip_code, date_of_birth, ..."
    )
    user_data_permissions: dict[str, str] = Field(
        default_factory=dict, description="Field -> how it may be given: dtmf, speech, both (default) or never"
    )

    @field_validator("number")
    @classmethod
    def _number_is_dialable(cls, value: str) -> str:
        return normalize_phone_number(value)
