"""The dashboard in a real browser (Debian's headless chromium, driven by Playwright) against the
live server and the simulated PBX: log in, place a call from the form and follow it through the
menu, the hold, the person and the bridge, counted by the stats as it ends, then play its
recordings from the history; the emergency refusal shown at the field; the flow editor; a
phone-sized screen with the stats."""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from app.calls import events as ev
from tests.browser.chromium import chromium, open_page
from tests.e2e.test_e2e_calls import BUSY, MENU, Stack, running_stack, stack  # noqa: F401 - the fixture
from tests.emergency_numbers import BLOCKED_SETTINGS, REFUSED_NUMBERS

pytestmark = pytest.mark.e2e  # whole calls through the page, the app and the simulated PBX

TOKEN = "dashboard-test-token"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser():
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def page(browser: Browser):
    page, errors = await open_page(browser, viewport={"width": 1200, "height": 900})
    yield page
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture
async def secured(tmp_path: Path, corpus, database_url):
    """The stack with a token: the API, the WebSocket and so the dashboard want it. The user has
    blocked a number (tests/emergency_numbers.py)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with running_stack(tmp_path, http, corpus, database_url, api_token=TOKEN, **BLOCKED_SETTINGS) as running:
            yield running


async def log_in(page: Page, stack: Stack, token: str = TOKEN) -> None:
    await page.goto(stack.api.base_url + "/")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#login-token", token)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")


async def place_call(page: Page, number: str, intent: str = "billing question") -> None:
    await page.fill("#call-number", number)
    await page.fill("#call-intent", intent)
    await page.click("#place-call button[type=submit]")


async def no_horizontal_overflow(page: Page) -> dict:
    return await page.evaluate(
        """() => {
            const root = document.documentElement;
            const wide = [...document.querySelectorAll('body *')]
                .filter((el) => el.getClientRects().length && el.getBoundingClientRect().right > root.clientWidth + 1)
                .slice(0, 5)
                .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
            return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide};
        }"""
    )


def in_order(seen: list[str], expected: list[str]) -> bool:
    """``expected`` appears in ``seen`` in this order (other entries may come in between)."""
    rest = iter(seen)
    return all(any(item == wanted for item in rest) for wanted in expected)


# The recordings a call keeps, in the order the page shows them, with their labels.
CHANNELS = {"far_end": "The company", "app": "What Hold Slayer said", "mixed": "Both sides", "bridged": "You and the person"}


def length_of(seconds: float) -> str:
    """A player's length, "mm:ss" (some sound is never 00:00)."""
    whole = max(1, math.floor(seconds + 0.5)) if seconds > 0 else 0  # rounded as JavaScript does
    return f"{whole // 60:02d}:{whole % 60:02d}"


async def play(page: Page, player: Locator) -> dict:
    """Press a player's button; its audio's state once it can play (or failed)."""
    await player.locator("button.play").click()
    audio = await player.locator("audio.recording").element_handle()
    await page.wait_for_function("(audio) => audio.error || (audio.readyState >= 2 && audio.duration > 0)", arg=audio, timeout=20_000)
    return await audio.evaluate("(a) => ({readyState: a.readyState, duration: a.duration, error: a.error && a.error.code, src: a.src})")


# ------------------------------------------------------------------ the acceptance test


async def test_a_call_placed_from_the_dashboard_is_followed_to_the_person_and_its_recording_plays(
    secured: Stack, page: Page
):
    await log_in(page, secured)
    await place_call(page, MENU)
    card = page.locator("#live-calls .call")
    badge = card.locator(".badge.status")
    # The banner may be up for only a second (the phone answers at once): watch for it from now,
    # in the page, until it shows with its sound played or refused.
    banner = asyncio.ensure_future(
        page.wait_for_function(
            """() => {
                const alert = document.getElementById('alert');
                return alert.hidden || !alert.dataset.sound ? null : {text: alert.innerText, sound: alert.dataset.sound};
            }""",
            polling="raf",
            timeout=150_000,
        )
    )
    try:
        await expect(card).to_have_count(1)
        await expect(badge).to_have_text("In the menu", timeout=30_000)
        await expect(card.locator(".steps")).to_contain_text("pressed 2", timeout=30_000)
        await expect(badge).to_have_text("On hold", timeout=60_000)
        await expect(card.locator(".steps")).to_contain_text("pressed 1")
        # The hold timer runs, and the strip shows what the classifier hears, live.
        await expect(card.locator(".hold-timer")).not_to_have_text("00:00", timeout=10_000)
        await expect(card.locator(".hearing .strip .cell").first).to_be_visible()
        assert await card.locator(".hearing .strip .cell").count() > 3
        alert = await (await banner).json_value()
    finally:
        banner.cancel()
    assert "A person is on the line" in alert["text"] and MENU in alert["text"]
    assert alert["sound"] == "played", "the alert tone played"
    await expect(badge).to_have_text("Connected", timeout=30_000)
    await expect(page.locator("#alert")).to_be_hidden()
    # The stats, opened while you talk to the person, count the call once it ends (how soon the
    # call ends after this click depends on the machine's load: no assertion on the view before).
    await page.click("nav a[href='#stats']")
    counted = page.locator("#view-stats table.by-company tr[data-company='Test Company'] td[data-figure='calls']")
    await expect(counted).to_have_text("1", timeout=60_000)
    await page.click("nav a[href='#live']")
    await expect(badge).to_have_text("Completed")
    await expect(card.locator(".outcome")).to_contain_text("connected to a person")
    timeline = await card.locator(".timeline li").evaluate_all("items => items.map((li) => li.dataset.status)")
    assert in_order(timeline, ["pending", "dialing", "navigating", "on_hold", "human_detected", "transferring", "connected", "completed"]), timeline
    await expect(card.locator(".transcript")).to_contain_text("Hi, thanks for picking up!")
    call_id = await card.get_attribute("data-call-id")

    # Afterwards: the call in the history, its record, and its recordings played.
    await page.click("nav a[href='#history']")
    row = page.locator(f"ol.history li[data-call-id='{call_id}']")
    await expect(row.locator(".badge")).to_have_text("Completed")
    await row.locator("a").click()
    detail = page.locator("#view-call .call-detail")
    await expect(detail).to_have_attribute("data-call-id", call_id)
    await expect(detail.locator("dl.facts")).to_contain_text("Test Company")
    detail_timeline = await detail.locator(".timeline li").evaluate_all("items => items.map((li) => li.dataset.status)")
    assert in_order(detail_timeline, ["navigating", "on_hold", "human_detected", "connected", "completed"]), detail_timeline
    await expect(detail.locator(".steps")).to_contain_text("pressed 2")
    # Its transcript, from the stored record: what we said to the person, with who said it.
    ours = detail.locator(".transcript li.speaker-us")
    await expect(ours.filter(has_text="Hi, thanks for picking up!")).to_have_count(1)
    await expect(detail.locator(".transcript li.empty")).to_have_count(0)
    # The classification history: a segment per change of class (the menus' prompts, the music, the person).
    cells = await detail.locator(".segments .cell").evaluate_all("cells => cells.map((c) => c.className)")
    assert len(cells) >= 3 and any("music" in c for c in cells), f"the classification history is drawn: {cells}"
    assert any("speech" in c or "human" in c for c in cells), cells
    # Its recordings: one player per channel the API lists, each with its label and length.
    status, body, _ = await secured.get(f"/api/calls/{call_id}/recordings")
    assert status == 200
    listed = {r["channel"]: r["seconds"] for r in json.loads(body)["recordings"]}
    assert {"far_end", "app", "bridged"} <= set(listed), f"a bridged call keeps these: {listed}"
    players = detail.locator(".recordings .player")
    await expect(players).to_have_count(len(listed))
    shown = await players.evaluate_all(
        "players => players.map((p) => [p.dataset.channel, p.querySelector('.label').textContent, p.querySelector('.length').textContent])"
    )
    assert [channel for channel, _, _ in shown] == [c for c in CHANNELS if c in listed], shown
    assert {channel: (label, length) for channel, label, length in shown if channel in ("far_end", "app", "bridged")} == {
        channel: (CHANNELS[channel], length_of(listed[channel])) for channel in ("far_end", "app", "bridged")
    }

    # The company's side plays, from the authorised fetch ...
    far_end = detail.locator(".player[data-channel='far_end']")
    state = await play(page, far_end)
    assert state["error"] is None and state["readyState"] >= 2, state
    assert state["src"].startswith("blob:"), "played from the authorised fetch, not a plain URL"
    assert state["duration"] > 5 and state["duration"] == pytest.approx(listed["far_end"], abs=0.25), state
    # It plays: the position moves on.
    await page.wait_for_function("(audio) => audio.currentTime > 0.2", arg=await far_end.locator("audio").element_handle(), timeout=10_000)
    await expect(far_end.locator(".recording-status")).to_have_text("")

    # ... and so does the conversation of the user and the person: its own file (its length,
    # not the far end's), while the far end stops (one plays at a time).
    bridged = detail.locator(".player[data-channel='bridged']")
    state = await play(page, bridged)
    assert state["error"] is None and state["readyState"] >= 2 and state["duration"] > 0, state
    assert state["src"].startswith("blob:"), state
    assert state["duration"] == pytest.approx(listed["bridged"], abs=0.25), (state, listed)
    assert abs(state["duration"] - listed["far_end"]) > 1, "the bridged player plays the bridged recording"
    await expect(bridged.locator(".recording-status")).to_have_text("")
    assert await far_end.locator("audio").evaluate("(a) => a.paused"), "one recording plays at a time"


@pytest.mark.parametrize("stack", [{"ws_max_queued_events": 50}], indirect=True)
async def test_the_page_reconnects_when_the_stream_drops_it_and_keeps_following_the_call(stack: Stack, page: Page):
    await page.goto(stack.api.base_url + "/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await place_call(page, MENU)
    card = page.locator("#live-calls .call")
    await expect(card.locator(".badge.status")).to_have_text("In the menu", timeout=30_000)
    await page.evaluate(
        "() => { window.connection = []; new MutationObserver(() => window.connection.push("
        "document.getElementById('connection').dataset.state)).observe(document.getElementById('connection'), {attributes: true}); }"
    )
    # More events at once than the server queues for a client: it drops the page (1008).
    for i in range(500):
        stack.holdslayer.bus.emit("nobody", ev.HoldProgress(hold_seconds=i))
    await page.wait_for_function("() => window.connection.includes('retrying') && window.connection.at(-1) === 'live'", timeout=20_000)
    # Back on the stream, with the state read again: the call goes on on the page.
    await expect(card.locator(".badge.status")).to_have_text("On hold", timeout=60_000)
    await expect(card.locator(".steps")).to_contain_text("pressed 1")
    await expect(card.locator(".steps li[data-step='main_menu']")).to_have_count(1)
    await expect(page.locator("#live-calls .call")).to_have_count(1)  # no card for the events of no call
    await card.locator("button.hangup").click()
    await expect(card.locator(".badge.status")).to_have_text("Cancelled", timeout=30_000)


# ------------------------------------------------------------------ logging in


async def test_the_page_asks_for_the_token_once_and_refuses_a_wrong_one(secured: Stack, page: Page):
    await page.goto(secured.api.base_url + "/")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#app")).to_be_hidden()
    await page.fill("#login-token", "not-the-token")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("not accepted")
    await expect(page.locator("#app")).to_be_hidden()

    await page.fill("#login-token", TOKEN)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")  # the WebSocket took it
    assert await page.evaluate("localStorage.getItem('holdslayer.token')") == TOKEN

    # Once: a reload goes straight in.
    await page.reload()
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    # A stored token the server no longer takes: the login again, saying why.
    await page.evaluate("localStorage.setItem('holdslayer.token', 'an-old-token')")
    await page.reload()
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login-error")).to_contain_text("no longer accepted")

    await page.fill("#login-token", TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('holdslayer.token')") is None


async def test_an_open_api_needs_no_login(stack: Stack, page: Page):
    response = await page.goto(stack.api.base_url + "/")
    assert response is not None and response.headers.get("cache-control") == "no-cache"
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#logout")).to_be_hidden()


# ------------------------------------------------------------------ the form


async def test_emergency_and_blocked_numbers_are_refused_at_their_field_and_nothing_is_dialled(secured: Stack, page: Page):
    status, _ = await secured.post("/api/devices", {"name": "fax", "dial_string": "PJSIP/fax"})
    assert status == 201
    await log_in(page, secured)
    await expect(page.locator("#call-device option[value='fax']")).to_have_count(1)  # the server's devices
    error = page.locator("#place-call .field-error[data-for='number']")
    # Every number of the shared list from the one page; the reason is emptied before each, so
    # each refusal is seen anew.
    for number, code in REFUSED_NUMBERS.items():
        await error.evaluate("(slot) => { slot.textContent = ''; }")
        await place_call(page, number)
        await expect(error).to_contain_text(f"reaches {code}, an emergency or blocked number")
        await expect(error).to_contain_text("never dials")
    await expect(page.locator("#place-call .field-error[data-for='device']")).to_be_hidden()
    await expect(page.locator("#live-calls .call")).to_have_count(0)
    status, body, _ = await secured.get("/api/calls")
    assert status == 200 and json.loads(body) == []
    assert secured.pbx.company_calls == []

    # A device deleted since the page listed it is named at its own field; a good call clears the errors.
    async with secured.http.delete(secured.api.base_url + "/api/devices/fax") as resp:
        assert resp.status == 204
    await page.select_option("#call-device", "fax")
    await place_call(page, BUSY)
    await expect(page.locator("#place-call .field-error[data-for='device']")).to_contain_text("unknown device 'fax'")
    await expect(error).to_be_hidden()
    await page.select_option("#call-device", "")
    await place_call(page, BUSY)
    await expect(page.locator("#place-call .field-error[data-for='device']")).to_be_hidden()
    card = page.locator("#live-calls .call")
    await expect(card.locator(".badge.status")).to_have_text("Failed", timeout=30_000)
    await expect(card.locator(".outcome")).to_contain_text("busy")


# ------------------------------------------------------------------ flows


async def test_the_flow_editor_saves_a_change_and_shows_the_api_s_reasons(secured: Stack, page: Page):
    await log_in(page, secured)
    await page.click("nav a[href='#flows']")
    await page.locator("ol.flows li[data-flow-id='test-menu'] a").click()
    viewer = page.locator(".flow-viewer")
    await expect(viewer.locator(".flow-steps li")).to_have_count(4)
    await expect(viewer.locator(".flow-steps li[data-step='main_menu']")).to_contain_text("press 2")
    await viewer.locator("button.edit").click()
    editor = page.locator("textarea.flow-json")
    flow = json.loads(await editor.input_value())
    assert flow["id"] == "test-menu" and [s["id"] for s in flow["steps"]] == ["main_menu", "second_menu", "hold", "transfer"]

    # What the API refuses is shown as it says it, and nothing is stored.
    flow["steps"][0]["dtmf"] = "x"
    await editor.fill(json.dumps(flow, indent=2))
    await page.click(".flow-editor button[type=submit]")
    await expect(page.locator(".flow-errors")).to_contain_text("steps[0].dtmf")
    await editor.fill("{not json")
    await page.click(".flow-editor button[type=submit]")
    await expect(page.locator(".flow-errors")).to_contain_text("Not valid JSON")
    status, body, _ = await secured.get("/api/call-flows/test-menu")
    assert status == 200 and json.loads(body)["version"] == 1

    flow["steps"][0]["dtmf"] = "2"
    flow["description"] = "Edited in the dashboard"
    await editor.fill(json.dumps(flow, indent=2))
    await page.click(".flow-editor button[type=submit]")
    await expect(page.locator(".flow-saved")).to_contain_text("version 2")
    await expect(page.locator(".flow-viewer")).to_contain_text("Edited in the dashboard")
    status, body, _ = await secured.get("/api/call-flows/test-menu")
    stored = json.loads(body)
    assert stored["description"] == "Edited in the dashboard" and stored["version"] == 2
    assert [s["dtmf"] for s in stored["steps"]][:2] == ["2", "1"]


async def test_a_flow_is_created_from_the_template_and_deleted(secured: Stack, page: Page):
    await log_in(page, secured)
    await page.goto(secured.api.base_url + "/#flow-new")
    editor = page.locator("textarea.flow-json")
    flow = json.loads(await editor.input_value())
    flow.update(id="dashboard-made", name="Made in the dashboard", phone_number="5559876")
    await editor.fill(json.dumps(flow))
    await page.click(".flow-editor button[type=submit]")
    await expect(page.locator(".flow-viewer")).to_contain_text("5559876")
    status, body, _ = await secured.get("/api/call-flows/dashboard-made")
    assert status == 200 and json.loads(body)["name"] == "Made in the dashboard"
    # The form offers it at once.
    await expect(page.locator("#call-flow option[value='dashboard-made']")).to_have_count(1)

    delete = page.locator(".flow-viewer button.delete")
    await delete.click()
    await expect(delete).to_have_text("Really delete?")
    status, _, _ = await secured.get("/api/call-flows/dashboard-made")
    assert status == 200, "one click does not delete"
    await delete.click()
    await expect(page.locator("ol.flows")).to_be_visible()
    await expect(page.locator("ol.flows li[data-flow-id='dashboard-made']")).to_have_count(0)
    status, _, _ = await secured.get("/api/call-flows/dashboard-made")
    assert status == 404


# ------------------------------------------------------------------ a phone-sized screen


async def test_on_a_phone_sized_screen_a_call_is_transferred_by_hand_hung_up_and_every_view_fits(
    secured: Stack, browser: Browser
):
    page, errors = await open_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    await log_in(page, secured)
    await place_call(page, MENU, intent="a rather long reason to call, to see that long words and lines wrap on a small screen")
    card = page.locator("#live-calls .call")
    badge = card.locator(".badge.status")
    await expect(badge).to_have_text("On hold", timeout=60_000)
    await expect(card.locator(".hearing .strip .cell").first).to_be_visible()
    views = {"live on hold": await no_horizontal_overflow(page)}

    # "Transfer now": the phone rings without waiting for a person; then hang up from here.
    await page.evaluate(
        "() => new MutationObserver(() => { if (!document.getElementById('alert').hidden) window.alerted = true; })"
        ".observe(document.getElementById('alert'), {attributes: true})"
    )
    await card.locator("button.transfer").click()
    await expect(badge).to_have_text("Connected", timeout=30_000)
    await expect(card.locator("button.transfer")).to_be_disabled()
    assert secured.pbx.user_calls and secured.pbx.user_calls[-1].answered
    # Hung up once bridged: a success (the user talked to the agent), ended from here.
    await card.locator("button.hangup").click()
    await expect(badge).to_have_text("Completed", timeout=30_000)
    await expect(card.locator(".outcome")).to_contain_text("cancelled by the user")
    await expect(card.locator("button.hangup")).to_be_hidden()
    alerted = await page.evaluate("() => window.alerted === true")
    call_id = await card.get_attribute("data-call-id")
    status, body, _ = await secured.get(f"/api/calls/{call_id}")
    record = json.loads(body)
    assert (record["status"], record["reason"], record["detail"]) == ("completed", "bridged", "cancelled by the user")
    human = [e["data"] for e in record["events"] if e["type"] == "HUMAN_DETECTED"]
    assert [h["evidence"]["rule"] for h in human] == ["the user asked"], "transferred by hand, not by the detector"
    assert not alerted, "no alarm for a transfer the user asked for"
    await expect(card.locator(".log")).to_contain_text("Putting you through, as you asked")

    await card.locator("details.events summary").click()
    views["live ended"] = await no_horizontal_overflow(page)
    await page.click("nav a[href='#history']")
    await expect(page.locator("ol.history li")).to_have_count(1)
    views["history"] = await no_horizontal_overflow(page)
    await page.locator("ol.history li a").click()
    await expect(page.locator("#view-call .call-detail")).to_be_visible()
    for summary in await page.locator("#view-call details summary").all():
        await summary.click()
    views["call"] = await no_horizontal_overflow(page)

    # The stats: the one finished call under its company and the hour it was placed (UTC).
    await page.click("nav a[href='#stats']")
    companies = page.locator("#view-stats table.by-company tbody tr")
    await expect(companies).to_have_count(1)
    company = page.locator("#view-stats table.by-company tr[data-company='Test Company']")
    await expect(company.locator("th")).to_have_text("Test Company")
    await expect(company.locator("td[data-figure='calls']")).to_have_text("1")
    await expect(company.locator("td[data-figure='success']")).to_have_text("100%")
    await expect(company.locator("td[data-figure='hold_median']")).to_have_text(re.compile(r"^\d+ (s|min)"))
    await expect(page.locator("#view-stats dl.figures [data-figure='calls'] dd")).to_have_text("1")
    created = datetime.fromisoformat(record["created_at"])
    hour = (created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)).hour
    hours = page.locator("#view-stats table.by-hour tbody tr")
    await expect(hours).to_have_count(1)
    await expect(hours.locator("th")).to_contain_text(f"{hour:02d}:00 UTC")
    await expect(hours.locator("td[data-figure='calls']")).to_have_text("1")
    # Narrow: each row a card of one figure a line, its name beside it.
    assert await company.locator("td[data-figure='calls']").evaluate(
        "(td) => getComputedStyle(td).display === 'flex' && td.getBoundingClientRect().width > 200"
    )
    views["stats"] = await no_horizontal_overflow(page)
    await page.click("nav a[href='#flows']")
    await expect(page.locator("ol.flows li").first).to_be_visible()
    views["flows"] = await no_horizontal_overflow(page)
    await page.locator("ol.flows li[data-flow-id='acme-bank'] a").click()
    await expect(page.locator(".flow-viewer")).to_be_visible()
    views["flow"] = await no_horizontal_overflow(page)
    await page.locator(".flow-viewer button.edit").click()
    views["editor"] = await no_horizontal_overflow(page)
    for name, measured in views.items():
        assert measured["scrollWidth"] <= measured["clientWidth"] and not measured["wide"], (name, measured)
    assert errors == []
