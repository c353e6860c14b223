"""The grouped cross-validation benchmark: folds by source, frozen groups, conditions, metrics, runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.audio.types import AudioClass, HumanDetected, HumanSuspected
from bench.detection import conditions as cond
from bench.detection.cv import FrozenRefused, check_frozen, compare, cv_specs, main, record_frozen, run_cv, run_cv_session
from bench.detection.folds import FROZEN, FoldError, frozen_groups, plan_folds
from bench.detection.metrics_cv import (
    CvResult,
    Event,
    aggregate,
    fold_score,
    greet_latency,
    never_rung,
    ring_latency,
)
from bench.detection.sessions_cv import fold_specs, render_cv
from bench.detection.sources import FOLD_KINDS, Item, Manifest, load_manifest

RATE = 8000


def _manifest(voices=7, music=9, speakers=11, noise=0, per_group=2) -> Manifest:
    items = []
    for kind, prefix, count in (
        ("announcement", "voice", voices),
        ("music", "music", music),
        ("speech", "speaker", speakers),
        ("noise", "noise", noise),
    ):
        for g in range(count):
            for i in range(per_group):
                items.append(Item(f"{kind}/{g}/{i}", kind, f"{prefix}:src{g}", (Path(f"/x/{kind}{g}-{i}.wav"),)))
    return Manifest("synthetic", tuple(items))


# -- folds ---------------------------------------------------------------------------------------


def test_folds_never_split_a_group_and_cover_every_group_once():
    manifest = _manifest(noise=8)
    plan = plan_folds(manifest, 5)
    for kind in ("announcement", "music", "speech", "noise"):
        seen: dict[str, str] = {}
        for fold in (*plan.folds, plan.frozen):
            for group in fold.of(kind):
                assert group not in seen, f"{group} in {seen[group]} and {fold.name}"
                seen[group] = fold.name
        assert set(seen) == set(manifest.groups(kind))
    # every item of a group lands where its group does: the fold lists groups, never items
    assert all(":" in g for f in plan.folds for g in f.all_groups())


def test_folds_are_balanced_and_deterministic_whatever_the_manifest_order():
    manifest = _manifest()
    shuffled = Manifest("synthetic", tuple(reversed(manifest.items)))
    a, b = plan_folds(manifest, 4), plan_folds(shuffled, 4)
    assert a.as_dict()["folds"] == b.as_dict()["folds"]
    assert a.as_dict()["frozen"] == b.as_dict()["frozen"]
    for kind in FOLD_KINDS:
        sizes = [len(f.of(kind)) for f in a.folds]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_frozen_groups_never_appear_in_any_fold_and_do_not_depend_on_k():
    manifest = _manifest(voices=12, music=12, speakers=12)
    plans = [plan_folds(manifest, k) for k in (2, 3, 4, 5)]
    frozen = plans[0].frozen.all_groups()
    assert frozen and all(p.frozen.all_groups() == frozen for p in plans)
    for plan in plans:
        assert not frozen & set().union(*(f.all_groups() for f in plan.folds))
    for kind in FOLD_KINDS:
        assert len(plans[0].frozen.of(kind)) == 2  # a sixth of 12


def test_frozen_membership_of_a_group_survives_a_growing_corpus():
    groups = [f"music:pkg{i}" for i in range(30)]
    frozen = set(frozen_groups(groups))
    grown = set(frozen_groups(groups + [f"music:new{i}" for i in range(6)]))
    assert len(frozen & grown) >= len(frozen) - 1  # at most the boundary group moves


def test_too_few_groups_for_k_folds_is_an_error():
    with pytest.raises(FoldError):
        plan_folds(_manifest(music=4), 5)  # 4 tracks, one frozen: 3 folds at most


def test_sessions_of_a_fold_use_only_that_folds_groups():
    plan = plan_folds(_manifest(), 4)
    for fold in (*plan.folds, plan.frozen):
        allowed = fold.all_groups()
        for spec in fold_specs(plan, fold.name, source="synthetic"):
            used = {spec.music, *spec.voices, *spec.others, *spec.noise} | ({spec.speaker} if spec.speaker else set())
            assert used <= allowed, (fold.name, used - allowed)
            assert spec.speaker not in spec.others


def test_several_seeds_pool_distinct_sessions_per_fold():
    plan = plan_folds(_manifest(), 4)
    one = cv_specs(plan, source="synthetic", frozen=False, seed=0, quick=False)
    pooled = cv_specs(plan, source="synthetic", frozen=False, seed=(0, 1), quick=False)
    assert len(pooled) == 2 * len(one)
    assert len({s.id for s in pooled}) == len(pooled)  # ids stay unique across the seeds
    first, second = pooled[: len(one)], pooled[len(one) :]
    # The first seed's sessions are those of a run with that seed alone, renamed; the second's differ.
    assert [(s.fold, s.kind, s.seed, s.music) for s in first] == [(s.fold, s.kind, s.seed, s.music) for s in one]
    assert [s.seed for s in second] != [s.seed for s in first]
    assert {s.fold for s in second} == {s.fold for s in one}


def test_a_seed_given_twice_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--seed", "1,1", "--quick"])
    assert "given twice" in capsys.readouterr().err


def test_manifest_file_paths_are_relative_to_the_manifest(tmp_path):
    data = {
        "version": 1,
        "items": [
            {"id": "music/a/1", "kind": "music", "group": "music:a", "path": "music/a1.wav", "seconds": 3.0, "genre": "x"},
            {"id": "speech/b", "kind": "speech", "group": "speaker:b", "path": "speech/b.wav", "spontaneous": True},
        ],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    manifest = load_manifest(tmp_path / "manifest.json")
    assert manifest.items[0].parts == (tmp_path / "music/a1.wav",)
    assert manifest.items[0].meta == {"genre": "x"}
    assert manifest.items[1].meta["spontaneous"] is True


# -- conditions ----------------------------------------------------------------------------------


def _words(rng, seconds=4.0, level=-20.0, floor=-60.0):
    """Bursts of 'speech' (noise at ``level``) 300 ms long, 400 ms apart, over a floor."""
    n = int(seconds * RATE)
    x = cond.coloured_noise(n, floor, rng)
    on = np.zeros(n, dtype=bool)
    for start in range(1600, n - 2400, 5600):
        on[start : start + 2400] = True
    x[on] += cond.hiss(int(on.sum()), level, rng)
    return x, on


def test_gate_gives_exact_zeros_between_words_and_keeps_the_words():
    rng = np.random.default_rng(1)
    x, on = _words(rng)
    out, closed = cond.noise_gate(x, -45.0, hangover_frames=2)
    frames_on = on[: len(closed) * 160].reshape(-1, 160).any(axis=1)
    assert closed.any()
    assert not (closed & frames_on).any()  # no word frame closed
    zero_frames = out[: len(closed) * 160].reshape(-1, 160)[closed]
    assert np.all(zero_frames == 0.0)
    # a pause longer than the hangover is digital silence from the hangover's end on
    assert np.all(out[4800:7040] == 0.0)
    np.testing.assert_array_equal(out[on], x[on])


def test_comfort_noise_fills_the_closed_frames_with_low_noise():
    rng = np.random.default_rng(2)
    x, _ = _words(rng)
    out, closed = cond.noise_gate(x, -45.0, fill_dbov=-70.0, rng=np.random.default_rng(3))
    filled = out[: len(closed) * 160].reshape(-1, 160)[closed]
    assert not np.any(filled.reshape(-1) == 0.0)
    assert -73.0 < cond.level_dbov(filled.reshape(-1)) < -67.0


def test_packet_loss_drops_the_counted_frames_and_conceals_them_by_repeating():
    rng = np.random.default_rng(4)
    x = cond.hiss(RATE * 20, -20.0, rng)
    out, lost = cond.packet_loss(x, np.random.default_rng(5), loss_rate=0.05, mean_burst=2.0, fade_db=3.0)
    assert 0.02 < lost.mean() < 0.09
    frames_in, frames_out = x.reshape(-1, 160), out.reshape(-1, 160)
    np.testing.assert_array_equal(frames_out[~lost], frames_in[~lost])
    changed = np.flatnonzero(np.any(frames_in != frames_out, axis=1))
    np.testing.assert_array_equal(changed, np.flatnonzero(lost))
    first = int(np.flatnonzero(lost & ~np.roll(lost, 1))[0])  # a burst's first lost frame
    np.testing.assert_allclose(frames_out[first], frames_in[first - 1] * 10 ** (-3.0 / 20))
    bursts = np.diff(np.concatenate([[0], lost.astype(int), [0]]))
    assert (bursts == 1).sum() < lost.sum()  # some bursts are longer than one frame


def test_agc_changes_the_level_slowly_towards_its_target():
    rng = np.random.default_rng(6)
    x = cond.hiss(RATE * 30, -40.0, rng)
    out, gains = cond.agc(x, -20.0, max_step_db=0.25)
    assert np.max(np.abs(np.diff(gains))) <= 0.25 + 1e-9
    assert abs(cond.level_dbov(out[: RATE // 2]) - cond.level_dbov(x[: RATE // 2])) < 4.0  # not at once
    assert abs(cond.level_dbov(out[-RATE * 5 :]) - (-20.0)) < 1.5  # but it gets there


def test_codec_band_limits_and_is_exact_without_quantisation():
    rng = np.random.default_rng(7)
    x = cond.hiss(RATE * 3, -20.0, rng)
    exact = cond.codec(x, low_hz=0.0, high_hz=4000.0, step_db=0.0, floor_db=1000.0)
    np.testing.assert_allclose(exact, x, atol=1e-6)
    coded = cond.codec(x, **cond.CODECS["lowrate"])
    spectrum_in = np.abs(np.fft.rfft(x)) ** 2
    spectrum_out = np.abs(np.fft.rfft(coded)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    high = freqs > 3200
    assert spectrum_out[high].sum() < 0.01 * spectrum_in[high].sum()
    band = (freqs > 800) & (freqs < 2400)
    assert spectrum_out[band].sum() > 0.3 * spectrum_in[band].sum()


def test_babble_and_noises_come_out_at_the_asked_level():
    rng = np.random.default_rng(8)
    clips = [cond.hiss(RATE * 2, -10.0, rng) for _ in range(3)]
    assert abs(cond.level_dbov(cond.babble(clips, RATE * 5, -40.0, rng)) + 40.0) < 0.01
    assert abs(cond.level_dbov(cond.coloured_noise(RATE * 5, -55.0, rng, 2.0)) + 55.0) < 0.01


def test_condition_draws_are_deterministic_by_seed():
    draws = [cond.draw_conditions(np.random.default_rng([3, i])).as_dict() for i in range(30)]
    again = [cond.draw_conditions(np.random.default_rng([3, i])).as_dict() for i in range(30)]
    assert draws == again
    names = {n for i in range(200) for n in cond.draw_conditions(np.random.default_rng([4, i])).names()}
    assert {"hiss", "room", "babble", "gate", "comfort-noise", "agc", "codec-gsm", "codec-lowrate", "plc"} <= names


# -- metrics -------------------------------------------------------------------------------------


def _result(events, onset=50.0, duration=60.0, kind="pickup", fold="fold-0"):
    return CvResult("s", fold, kind, duration, onset if kind == "pickup" else None, tuple(events))


def test_greet_and_ring_latency_count_from_the_first_word():
    r = _result([Event("suspected", 40.0), Event("retracted", 43.0, 40.0), Event("suspected", 50.3), Event("detected", 51.5)])
    assert greet_latency(r) == pytest.approx(0.3)
    assert ring_latency(r) == pytest.approx(1.5)
    assert not never_rung(r)
    assert never_rung(_result([Event("detected", 58.5)]))  # 8.5 s: too late
    assert never_rung(_result([Event("detected", 45.0)]))  # only a false ring before the onset


def test_fold_score_counts_false_rings_suspicions_and_retractions_per_hour_of_hold():
    results = [
        _result([Event("suspected", 10.0), Event("retracted", 12.0, 10.0), Event("detected", 30.0), Event("detected", 51.0)]),
        _result([Event("suspected", 50.5), Event("retracted", 52.0, 50.5)]),
        _result([Event("detected", 100.0), Event("suspected", 200.0)], duration=3600.0 - 100.0, kind="pure_hold"),
    ]
    score = fold_score(results)
    assert score["hold_hours"] == pytest.approx(1.0)
    assert score["false_rings"] == 2 and score["false_rings_per_hour"] == pytest.approx(2.0)
    assert score["suspicions"] == 2 and score["suspicions_per_hour"] == pytest.approx(2.0)
    assert score["retractions"] == 2 and score["retractions_after_onset"] == 1
    assert score["never_rung"] == 1 and score["never_rung_percent"] == pytest.approx(50.0)
    assert score["ring_latency_median"] == pytest.approx(1.0)
    assert score["greet_latency_median"] == pytest.approx(0.5)
    assert score["pickups_rung_before_onset"] == 1


def test_no_suspicion_at_all_gives_na_greet_latency():
    score = fold_score([_result([Event("detected", 51.0)])])
    assert score["greet_latency_median"] is None and score["ring_latency_median"] == pytest.approx(1.0)


def test_aggregate_takes_the_mean_and_the_worst_fold_the_right_way():
    folds = {
        "fold-0": {"false_rings_per_hour": 0.0, "live_human_f1": 0.9, "never_rung_percent": 10.0},
        "fold-1": {"false_rings_per_hour": 3.0, "live_human_f1": 0.6, "never_rung_percent": 0.0},
    }
    summary = aggregate(folds)
    assert summary["mean"]["false_rings_per_hour"] == pytest.approx(1.5)
    assert summary["worst"]["false_rings_per_hour"] == 3.0 and summary["worst_fold"]["false_rings_per_hour"] == "fold-1"
    assert summary["worst"]["live_human_f1"] == 0.6  # lower F1 is worse
    assert summary["worst_fold"]["never_rung_percent"] == "fold-0"
    assert summary["mean"]["greet_latency_p90"] is None


def test_compare_flags_a_worse_worst_fold_only():
    old = {"folds": {"fold-0": {"false_rings_per_hour": 1.0}}, "worst": {"false_rings_per_hour": 1.0, "never_rung_percent": 5.0}}
    better = {"folds": {"fold-0": {"false_rings_per_hour": 0.5}}, "worst": {"false_rings_per_hour": 0.5, "never_rung_percent": 5.0}}
    worse = {"folds": {"fold-0": {"false_rings_per_hour": 0.5}}, "worst": {"false_rings_per_hour": 0.5, "never_rung_percent": 7.5}}
    assert not compare(old, better)["worst_got_worse"]
    assert compare(old, better)["deltas"]["fold-0"]["false_rings_per_hour"] == pytest.approx(-0.5)
    result = compare(old, worse)
    assert result["worst_got_worse"] and result["worst"]["never_rung_percent"]["verdict"] == "worse"


# -- frozen ledger and the runner ----------------------------------------------------------------


def test_frozen_groups_are_scored_once_unless_again(tmp_path):
    plan = plan_folds(_manifest(), 4)
    ledger = tmp_path / "ledger.json"
    assert check_frozen(ledger, plan, again=False) == 0
    record_frozen(ledger, plan, {"date": "d", "commit": "c" * 40, "dirty": False, "detector": "x",
                                 "overall": {"never_rung_percent": 0.0, "false_rings_per_hour": 0.0}}, 0)
    with pytest.raises(FrozenRefused, match="--again"):
        check_frozen(ledger, plan, again=False)
    assert check_frozen(ledger, plan, again=True) == 1
    other = plan_folds(_manifest(music=15), 4)  # another corpus: other frozen groups
    if other.frozen.all_groups() != plan.frozen.all_groups():
        assert check_frozen(ledger, other, again=False) == 0


class FakeDetector:
    """Says what its script says at the scripted stream times; records when it was reset."""

    def __init__(self, script: list[tuple[str, float]]) -> None:
        self.script = script
        self.resets: list[float] = []
        self.t = 0.0

    def reset_for_hold(self) -> None:
        self.resets.append(self.t)

    def push(self, pcm, t):
        self.t = t
        out = []
        for kind, when in self.script:
            if t <= when < t + len(pcm) / RATE:
                out.append(HumanSuspected(when, 0.5) if kind == "suspected" else HumanDetected(when, 0.9))
        return out


def _tiny_manifest(corpus) -> Manifest:
    """Two groups per kind from the base corpus: enough for 2 folds... with one frozen each."""
    items = []
    for i, name in enumerate(("queue-thankyou", "one-moment-please", "tt-allbusy")):
        items.append(Item(f"announcement/{name}", "announcement", f"voice:v{i}", (corpus.prompt(name),)))
    for i, track in enumerate(corpus.moh_tracks()[:3]):
        items.append(Item(f"music/{track.stem}", "music", f"music:m{i}", (track,)))
    for i, name in enumerate(("kristoff.raw", "vk5qi.wav", "cq_ref.raw")):
        items.append(Item(f"speech/{name}", "speech", f"speaker:s{i}", (corpus.speech(name),), meta={"spontaneous": True}))
    return Manifest("tiny", tuple(items))


@pytest.mark.corpus
def test_a_session_renders_deterministically_with_its_onset_on_a_word(corpus):
    manifest = _tiny_manifest(corpus)
    plan = plan_folds(manifest, 2)
    spec = fold_specs(plan, "fold-0", source="tiny", quick=True)[0]
    a, b = render_cv(spec, manifest), render_cv(spec, manifest)
    np.testing.assert_array_equal(a.pcm, b.pcm)
    assert a.segments == b.segments and a.human_onset == b.human_onset
    human = [s for s in a.segments if s.label == AudioClass.LIVE_HUMAN]
    assert human and human[0].t_start == pytest.approx(a.human_onset)
    assert a.duration >= a.human_onset + 10.0
    word = a.pcm[int(a.human_onset * RATE) : int(a.human_onset * RATE) + 4000].astype(float)
    assert cond.level_dbov(word) > -40.0


@pytest.mark.corpus
def test_quick_end_to_end_on_two_tiny_sessions_with_a_fake_detector(corpus, tmp_path, monkeypatch):
    manifest = _tiny_manifest(corpus)
    plan = plan_folds(manifest, 2)
    specs = [fold_specs(plan, "fold-0", source="tiny", quick=True)[0], fold_specs(plan, "fold-1", source="tiny", quick=True)[-1]]
    assert [s.kind for s in specs] == ["pickup", "pure_hold"]
    import bench.detection.cv as cv

    monkeypatch.setattr(cv, "cv_specs", lambda *a, **k: specs)
    monkeypatch.setattr(cv, "_git_state", lambda: ("f" * 40, False))
    detectors: dict[str, FakeDetector] = {}
    report = run_cv(
        manifest=manifest,
        source="tiny",
        folds=2,
        detector="fake",
        quick=True,
        jobs=1,
        out_dir=tmp_path,
            runner=lambda job: _scripted(job[0], manifest, detectors),
    )
    assert set(report["folds"]) == {"fold-0", "fold-1"}
    pickup, hold = report["folds"]["fold-0"], report["folds"]["fold-1"]
    assert pickup["pickups"] == 1 and hold["pickups"] == 0 and hold["pure_holds"] == 1
    assert pickup["greet_latency_median"] == pytest.approx(0.3, abs=0.011)
    assert pickup["ring_latency_median"] == pytest.approx(1.0, abs=0.011)
    assert pickup["never_rung_percent"] == 0.0 and pickup["false_rings"] == 0
    assert hold["false_rings"] == 2 and hold["false_rings_per_hour"] == pytest.approx(2 / (60.0 / 3600), rel=0.01)
    assert detectors[specs[1].id].resets[:2] == [0.0, pytest.approx(40.0, abs=0.03)]  # the wait resumes 30 s after a ring
    assert report["worst"]["false_rings_per_hour"] == hold["false_rings_per_hour"]
    assert report["worst_fold"]["false_rings_per_hour"] == "fold-1"
    assert report["plan"]["frozen"] and FROZEN not in report["folds"]
    assert pickup["cpu_percent"] >= 0.0
    from bench.detection.cv import markdown, write_report

    json_path, md_path = write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["folds"].keys() == report["folds"].keys()
    assert "| **worst** |" in md_path.read_text() and "fold-1" in markdown(report)


def _scripted(spec, manifest, detectors):
    session = render_cv(spec, manifest)
    if session.human_onset is not None:
        script = [("suspected", session.human_onset + 0.3), ("detected", session.human_onset + 1.0)]
    else:
        script = [("detected", 10.0), ("detected", 45.0)]
    detectors[spec.id] = FakeDetector(script)
    return run_cv_session(session, detectors[spec.id])
