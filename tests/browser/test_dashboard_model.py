"""The dashboard's pure modules (dashboard/js/model.js, api.js, live.js) run in the real browser
on events built by the app's own event classes: the WebSocket state and events folded into a
call (dedup by seq, the hold timer across clocks, the alert, a call that ended while the stream
was down), the transcript as app/calls/transcript.py makes it, and the API's error shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from app.api.routes.dashboard import mount_dashboard
from app.calls import events as ev
from app.calls.events import CallEvent
from app.calls.transcript import transcript_lines
from tests.browser.chromium import chromium, open_page
from tests.conftest import ApiServer

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
CALL = "c1"


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def ms(seconds: float) -> int:
    """The browser's clock (Date.now()) at T0 + seconds, with the browser's clock equal to the server's."""
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


class Events:
    """Events of one call as the app publishes them (``CallEvent.to_dict``), numbered like the bus."""

    def __init__(self, call_id: str = CALL):
        self.call_id = call_id
        self.seq = 0

    def __call__(self, seconds: float, data: ev.EventData) -> dict[str, Any]:
        self.seq += 1
        return CallEvent(self.call_id, data, at(seconds), self.seq).to_dict()


def menu_call_events() -> list[dict[str, Any]]:
    """A call through a menu to hold and a person, bridged (the shape of the MENU company's call)."""
    e = Events()
    status = lambda t, new, old: e(t, ev.CallStatusChanged(status=new, previous=old))  # noqa: E731
    return [
        e(0, ev.CallCreated(number="5550001", intent="billing", device="sip_phone", flow_id="test-menu", company="Test Company")),
        status(0.1, "dialing", "pending"),
        e(0.1, ev.CallDialing(number="5550001", dial_string="PJSIP/5550001@trunk")),
        status(0.2, "ringing", "dialing"),
        status(1, "navigating", "ringing"),
        e(1, ev.CallAnswered()),
        e(1, ev.IvrStep(step_id="main_menu", step_type="LISTEN", description="press 2")),
        e(4, ev.IvrMenuDetected(step_id="main_menu", transcript="For billing press 2.", t_start=1, t_end=4, heard_seconds=3, listened_seconds=3,
                                options=[ev.MenuOptionHeard(key="2", spoken=None, label="billing", kind="dtmf")])),
        e(4, ev.IvrDtmfSent(step_id="main_menu", digits="2", purpose="flow", navigator="flow")),
        e(5, ev.IvrStep(step_id="hold", step_type="HOLD", description="wait")),
        status(5, "on_hold", "navigating"),
        e(6, ev.AudioClassified(t_start=3, t_end=6, audio_class="MUSIC", confidence=0.9)),
        e(7, ev.HoldProgress(hold_seconds=2.0)),
        e(20, ev.AgentGreeted(line="greeting", text="Hi, thanks for picking up!", t=19, seconds=1.5)),
        e(25, ev.HumanProbe(text="Hello? Are you there?", t=24, seconds=1.2)),
        e(30, ev.HumanDetected(t=29, confidence=0.8, evidence={"rule": "reply"}, hold_seconds=25.0)),
        status(30, "human_detected", "on_hold"),
        status(30, "transferring", "human_detected"),
        e(30, ev.TransferStarted(device="sip_phone", dial_string="PJSIP/userphone")),
        e(31, ev.TransferComplete(device="sip_phone")),
        status(31, "connected", "transferring"),
        e(40, ev.RecordingSaved(path="/r/c1.wav", seconds=40)),
        e(40, ev.CallEnded(status="completed", reason="bridged", detail="the user hung up")),
    ]


@pytest.fixture
async def js():
    """``js(script, **args)``: run ``script`` (an async function body with ``m`` = model.js, ``api``
    = api.js, ``live`` = live.js and the args in scope) in the browser; returns its JSON value."""
    app = FastAPI()
    mount_dashboard(app)
    server = ApiServer(app)
    await server.start()
    try:
        async with chromium() as browser:
            page, errors = await open_page(browser)
            # A blank page of the dashboard's origin: the modules load as the dashboard loads them.
            await page.route(f"{server.base_url}/blank", lambda route: route.fulfill(body="<!doctype html><title>t</title>", content_type="text/html"))
            await page.goto(f"{server.base_url}/blank")

            async def run(script: str, **args: Any) -> Any:
                return await page.evaluate(
                    "async ([body, args]) => {"
                    "  const m = await import('/js/model.js');"
                    "  const api = await import('/js/api.js');"
                    "  const live = await import('/js/live.js');"
                    "  const f = new Function('m', 'api', 'live', 'args', `return (async () => { ${body} })();`);"
                    "  return f(m, api, live, args);"
                    "}",
                    [script, args],
                )

            yield run
            assert errors == []
    finally:
        await server.stop()


FOLD = """
  const model = m.createModel();
  const effects = args.messages.map((message, i) => m.applyMessage(model, message, args.now[i] ?? args.now[args.now.length - 1]));
  const calls = Object.fromEntries([...model.calls.values()].map((c) => [c.id, {
    ...c, active: m.alertActive(c), held: m.holdSeconds(c, args.later, model.skewMs) }]));
  return {effects, calls, skew: model.skewMs};
"""


async def test_a_call_folds_into_its_timeline_steps_transcript_and_outcome(js):
    events = menu_call_events()
    out = await js(FOLD, messages=events, now=[ms(40)], later=ms(40))
    call = out["calls"][CALL]
    assert [t["status"] for t in call["timeline"]] == [
        "pending", "dialing", "ringing", "navigating", "on_hold", "human_detected", "transferring", "connected", "completed",
    ]  # fmt: skip
    assert (call["number"], call["company"], call["flowId"]) == ("5550001", "Test Company", "test-menu")
    assert [(s["stepId"], [i["text"] for i in s["inputs"]]) for s in call["steps"]] == [("main_menu", ["2"]), ("hold", [])]
    assert call["steps"][0]["heard"]["options"] == ["2: billing"]
    assert call["outcome"] == {"status": "completed", "reason": "bridged", "detail": "the user hung up"}
    assert call["live"] is False and call["status"] == "completed"
    assert call["held"] == pytest.approx(25.0)  # on hold from 5 s to 30 s, then frozen
    assert call["recordingSeconds"] == 40
    assert [h["audioClass"] for h in call["hearing"]] == ["MUSIC"]
    assert call["active"] is False, "connected: no alert any more"
    # The transcript is the one app/calls/transcript.py makes of the same events.
    python = [(line.speaker, line.kind, line.text, line.at) for line in transcript_lines(events)]
    assert [(line["speaker"], line["kind"], line["text"], line["at"]) for line in call["transcript"]] == python
    assert len(python) == 4


async def test_an_event_both_in_the_state_and_after_it_is_folded_once(js):
    events = menu_call_events()
    state = {"type": "state", "at": at(5), "calls": [
        {"call_id": CALL, "number": "5550001", "intent": "billing", "status": "on_hold", "live": True, "events": events[:11]},
    ]}  # fmt: skip
    # The stream repeats what the state held (seq 9..11), then goes on.
    out = await js(FOLD, messages=[state, *events[8:16]], now=[ms(5)], later=ms(30))
    call = out["calls"][CALL]
    assert [t["status"] for t in call["timeline"]] == ["pending", "dialing", "ringing", "navigating", "on_hold"]
    assert [i["text"] for s in call["steps"] for i in s["inputs"]] == ["2"], "the key press once"
    assert [line["kind"] for line in call["transcript"]] == ["menu", "dtmf", "greeting", "probe"]
    assert call["lastSeq"] == 16
    assert [e["changed"] for e in out["effects"]][1:4] == [[], [], []], "the repeats changed nothing"
    assert out["effects"][-1]["alerts"] == [CALL]


async def test_the_hold_timer_runs_on_the_server_clock_whatever_the_browser_clock(js):
    events = menu_call_events()
    # The browser's clock is an hour behind the server's; the page opens 12 s into the hold.
    behind = 3600
    state = {"type": "state", "at": at(17), "calls": [
        {"call_id": CALL, "number": "5550001", "status": "on_hold", "live": True, "events": events[:11]},
    ]}  # fmt: skip
    out = await js(FOLD, messages=[state], now=[ms(17 - behind)], later=ms(20 - behind))
    call = out["calls"][CALL]
    assert call["held"] == pytest.approx(15.0, abs=0.01), "on hold since 5 s; the browser reads it at 20 s"
    assert out["skew"] == -behind * 1000


async def test_a_person_raises_the_alert_once_until_dismissed_or_connected(js):
    events = menu_call_events()
    body = """
      const model = m.createModel();
      const seen = [];
      for (const message of args.messages) {
        const effects = m.applyMessage(model, message, 0);
        seen.push({type: message.type, alerts: effects.alerts, active: m.alertActive(model.calls.get(args.id))});
      }
      m.dismissAlert(model, args.id);
      return {seen, afterDismiss: m.alertActive(model.calls.get(args.id))};
    """
    before_bridge = events[:19]  # up to TRANSFER_STARTED: the user's phone rings
    out = await js(body, messages=before_bridge, id=CALL)
    seen = out["seen"]
    raised = [s["type"] for s in seen if s["alerts"]]
    assert raised == ["HUMAN_DETECTED"], "sounded once"
    assert [s["active"] for s in seen][-4:] == [True, True, True, True]
    assert out["afterDismiss"] is False
    out = await js(body, messages=events[:21], id=CALL)
    assert out["seen"][-1]["active"] is False, "the user is through: the alert goes"
    # "Transfer now" makes a HUMAN_DETECTED too: the user asked, so nothing to alarm them about.
    asked = [dict(e) for e in events[:17]]
    asked[15] = {**asked[15], "data": {**asked[15]["data"], "evidence": {"rule": "the user asked"}}}
    out = await js(body, messages=asked, id=CALL)
    assert not any(s["alerts"] or s["active"] for s in out["seen"])


async def test_a_call_that_ended_while_the_stream_was_down_is_read_back(js):
    events = menu_call_events()
    body = """
      const model = m.createModel();
      m.applyMessage(model, args.state, 0);
      const effects = m.applyMessage(model, {type: 'state', at: args.later, calls: []}, 0);
      const before = {...model.calls.get(args.id)};
      m.applyStoredCall(model, args.record);
      const after = model.calls.get(args.id);
      return {refresh: effects.refresh, before: before.live, after: {live: after.live, outcome: after.outcome, status: after.status, held: m.holdSeconds(after, 0, 0)}};
    """
    state = {"type": "state", "at": at(10), "calls": [{"call_id": CALL, "number": "5550001", "status": "on_hold", "live": True, "events": events[:11]}]}
    record = {"call_id": CALL, "number": "5550001", "status": "failed", "reason": "company_hangup", "detail": "cause 16",
              "created_at": at(0), "ended_at": at(50), "events": events[:11]}  # fmt: skip
    out = await js(body, state=state, later=at(60), record=record, id=CALL)
    assert out["refresh"] == [CALL] and out["before"] is True
    assert out["after"]["live"] is False and out["after"]["status"] == "failed"
    assert out["after"]["outcome"] == {"status": "failed", "reason": "company_hangup", "detail": "cause 16"}
    assert out["after"]["held"] == pytest.approx(45.0), "the hold closed at the end"


async def test_an_event_of_a_call_never_seen_begin_asks_for_its_record_instead_of_a_blank_call(js):
    events = menu_call_events()
    body = """
      const model = m.createModel();
      const stray = m.applyMessage(model, args.stray, 0);
      const known = [...model.calls.keys()];
      m.applyStoredCall(model, args.record);
      const next = m.applyMessage(model, args.next, 0);
      const call = model.calls.get(args.id);
      return {stray, known, next, status: call.status, steps: call.steps.map((s) => s.stepId)};
    """
    record = {"call_id": CALL, "number": "5550001", "status": "on_hold", "created_at": at(0), "events": events[:11]}
    out = await js(body, stray=events[11], record=record, next=events[12], id=CALL)
    assert out["stray"] == {"changed": [], "alerts": [], "refresh": [CALL]} and out["known"] == []
    assert out["status"] == "on_hold" and out["steps"] == ["main_menu", "hold"]
    assert out["next"]["changed"] == [CALL], "the events after the record fold in"


async def test_api_errors_are_read_by_field_as_fastapi_and_the_app_write_them(js):
    body = """
      const emergency = [{loc: ['body', 'number'], msg: '911 reaches 911, an emergency or blocked number', type: 'value_error'}];
      const flow = [{loc: ['body', 'steps', 2, 'dtmf'], msg: 'bad key'}, {loc: ['body'], msg: 'steps[1].next_step: no such step'}];
      return {
        emergency: api.fieldErrors(emergency),
        flowFields: api.fieldErrors(flow),
        flowText: api.describeDetail(flow),
        plain: api.fieldErrors('no call with id x'),
        loc: api.formatLoc(['query', 'limit']),
      };
    """
    out = await js(body)
    assert out["emergency"] == {"number": "911 reaches 911, an emergency or blocked number"}
    assert out["flowFields"] == {"steps": "bad key", "": "steps[1].next_step: no such step"}
    assert out["flowText"] == "steps[2].dtmf: bad key\nsteps[1].next_step: no such step"
    assert out["plain"] == {"": "no call with id x"}
    assert out["loc"] == "limit"


DEVICE_LISTS = [
    (["sip_phone", "mobile"], ["sip_phone", "mobile"], None),
    ([{"name": "sip_phone", "dial_string": "PJSIP/u", "default": True}, {"name": "mobile"}], ["sip_phone", "mobile"], "sip_phone"),
    ({"devices": [{"id": "desk"}], "default": "desk"}, ["desk"], "desk"),
    ({"sip_phone": "PJSIP/u", "mobile": "PJSIP/m"}, ["sip_phone", "mobile"], None),
    ({"devices": {"desk": "PJSIP/d"}, "default_device": "desk"}, ["desk"], "desk"),
    ([], [], None),
]


async def test_the_form_reads_the_device_list_in_the_shapes_it_may_take(js):
    out = await js("return args.bodies.map((body) => live.deviceNames(body));", bodies=[body for body, _, _ in DEVICE_LISTS])
    assert out == [{"names": names, "preferred": preferred} for _, names, preferred in DEVICE_LISTS]
