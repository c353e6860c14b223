"""How a call ends: pure rules from what the PBX and the audio said to a final status and reason.

Hang-up causes are Q.850 (``ChannelDestroyed.cause``); dial statuses come from ``Dial`` events;
a special information tone (SIT) says why the network could not complete the call before the
announcement ends and long before the hang-up cause arrives (which is often just 16).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.calls.models import CallStatus, EndReason


class Finish(Exception):
    """Ends the call with this outcome (raised from wherever the call learns it is over)."""

    def __init__(self, status: CallStatus, reason: EndReason, detail: str = ""):
        super().__init__(f"{status.value}/{reason.value}: {detail}")
        self.status, self.reason, self.detail = status, reason, detail


# Q.850 causes that mean the number itself is wrong, or the network could not carry the call.
NOT_IN_SERVICE_CAUSES = frozenset({1, 2, 3, 22, 28})
CONGESTION_CAUSES = frozenset({34, 38, 41, 42, 44})
BUSY_CAUSES = frozenset({17})
SIT_REASONS: Mapping[str, EndReason] = {
    "intercept": EndReason.NOT_IN_SERVICE,
    "vacant_code": EndReason.NOT_IN_SERVICE,
    "no_circuit": EndReason.CONGESTION,
    "reorder": EndReason.CONGESTION,
    "ineffective_other": EndReason.CONGESTION,
    "unknown": EndReason.CONGESTION,
}
DIALSTATUS_REASONS: Mapping[str, EndReason] = {
    "BUSY": EndReason.BUSY,
    "NOANSWER": EndReason.NO_ANSWER,
    "CONGESTION": EndReason.CONGESTION,
    "CHANUNAVAIL": EndReason.CONGESTION,
}


def sit_outcome(tone_detail: Mapping[str, Any]) -> Finish:
    """A special information tone was heard before the user was connected."""
    cause = str(tone_detail.get("cause", "unknown"))
    return Finish(CallStatus.FAILED, SIT_REASONS.get(cause, EndReason.CONGESTION), f"special information tone: {cause}")


def dial_outcome(dialstatus: str, *, answered: bool) -> Finish | None:
    """A dial status that ends an unanswered call at once (BUSY arrives long before the channel
    is destroyed: Asterisk keeps it ~5 s)."""
    reason = DIALSTATUS_REASONS.get(dialstatus)
    if reason is None or answered:
        return None
    return Finish(CallStatus.FAILED, reason, f"dial status {dialstatus}")


def cancelled_outcome(detail: str, *, connected: bool, reason: EndReason = EndReason.CANCELLED) -> Finish:
    """The user hung up from here (``cancelled``), or the app was stopped (``shutdown``)."""
    if connected:  # the user already talked to the agent: that is a success
        return Finish(CallStatus.COMPLETED, EndReason.BRIDGED, detail)
    return Finish(CallStatus.CANCELLED, reason, detail)


def pbx_lost_outcome(detail: str, *, connected: bool) -> Finish:
    """The PBX went away (stopped, restarted, unreachable): never blamed on the company."""
    if connected:  # the user talked to the agent before the PBX went: that is a success
        return Finish(CallStatus.COMPLETED, EndReason.BRIDGED, detail)
    return Finish(CallStatus.FAILED, EndReason.PBX_LOST, detail)


def company_gone_outcome(
    cause: int | None,
    cause_txt: str,
    dialstatus: str,
    *,
    connected: bool,
    answered: bool,
    status: CallStatus,
    lost: bool = False,
) -> Finish:
    """The company's channel went away: why, from its cause and where the call was.

    ``lost``: the PBX no longer had the channel when the app reconnected to it, and never said
    it hung up (it restarted, or lost the call while the app could not hear it)."""
    text = cause_txt or "no cause given"
    detail = f"cause {cause} ({text})" if cause is not None else text
    if connected:
        return Finish(CallStatus.COMPLETED, EndReason.BRIDGED, "the agent hung up")
    if lost and cause is None:
        where = f"while {status.value}"
        return pbx_lost_outcome(f"the PBX no longer had the call when the app reconnected (restarted?) {where}", connected=False)
    if dialstatus in DIALSTATUS_REASONS and not answered:
        return Finish(CallStatus.FAILED, DIALSTATUS_REASONS[dialstatus], detail)
    if cause in NOT_IN_SERVICE_CAUSES:
        return Finish(CallStatus.FAILED, EndReason.NOT_IN_SERVICE, detail)
    if cause in CONGESTION_CAUSES:
        return Finish(CallStatus.FAILED, EndReason.CONGESTION, detail)
    if not answered:
        if cause in BUSY_CAUSES:
            return Finish(CallStatus.FAILED, EndReason.BUSY, detail)
        return Finish(CallStatus.FAILED, EndReason.NO_ANSWER, detail)
    return Finish(CallStatus.FAILED, EndReason.COMPANY_HANGUP, f"{detail} while {status.value}")
