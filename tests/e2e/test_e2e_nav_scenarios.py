"""Issue 4's acceptance, end to end: the app calls every navigation company of the simulated PBX
(app/sim/scenarios/nav-*.yaml) with no key and no flow, then again with the flows those calls
taught, then the company whose menu changed. The same suite is ``python -m bench.navigation``
(which also runs every intent, not just each company's first); see bench/navigation/calls.py.

Each company is its own test with its own PBX and app, so the calls (which wait in real time)
run side by side on the test workers.
"""

from __future__ import annotations

import pytest

from bench.navigation.calls import SCENARIOS_DIR, NavigationSuite, navigation_scenarios

pytestmark = pytest.mark.e2e

OFFLINE_TARGET = 0.9
# The company files' names after "nav-" (``NavigationSuite(only=...)``).
COMPANIES = sorted(path.stem.removeprefix("nav-") for path in SCENARIOS_DIR.glob("nav-*.yaml"))


def test_every_navigation_company_is_called():
    assert len(COMPANIES) >= 12 and len(navigation_scenarios()) == len(COMPANIES)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("company", COMPANIES)
async def test_offline_navigation_learned_flows_and_a_changed_menu(corpus, database_url, company):
    companies = navigation_scenarios(company)
    assert companies

    async with NavigationSuite("offline", only=company, settings={"database_url": database_url}) as suite:
        await suite.explore_all(first_intent_only=True)
        explored = suite.result.of("explore")
        assert len(explored) == len(companies)
        failures = [(c.company, c.intent, c.path, c.detail) for c in explored if not c.reached]
        assert suite.result.success_rate("explore") >= OFFLINE_TARGET, failures
        assert all(c.navigator_decisions > 0 for c in explored if c.needed > 0), "every menu was read, none keyed from a file"

        # Second calls follow the learned flows: the same destination, no navigator decision.
        await suite.replay_all()
        for first in explored:
            if not first.reached:
                continue
            again = next(c for c in suite.result.of("replay") if c.number == first.number)
            assert again.reached and again.route == first.route, (again.company, again.path, first.path)
            assert again.navigator_decisions == 0 and not again.mismatch, (again.company, again.detail)

        # The menu changed under its flow: the call notices, explores, arrives, and re-learns.
        await suite.changed_menu()
        changed, replayed = suite.result.of("changed"), suite.result.of("changed-replay")
        assert bool(changed) == (company == "changed") and len(changed) == len(replayed)
        for call in changed:
            assert call.mismatch and call.reached, (call.company, call.path, call.detail)
            assert call.navigator_decisions > 0
            assert call.learned_version is not None and call.learned_version >= 2, "the flow was re-learned"
        for call in replayed:
            assert call.reached and call.navigator_decisions == 0 and not call.mismatch, (call.path, call.detail)
