from app.audio.stream_clock import StreamClock


def test_jitter_is_ignored_and_frames_stay_evenly_spaced():
    clock = StreamClock(8000, 160)
    clock.advance(10.0, 160)
    clock.advance(10.03, 160)  # 10 ms late: jitter, not a gap
    assert clock.frame_time(0) == 10.0
    assert clock.frame_time(1) == 10.02
    assert clock.samples_total == 320


def test_a_gap_in_the_stream_reanchors():
    clock = StreamClock(8000, 160)
    clock.advance(0.0, 160)
    clock.advance(5.0, 160)  # the caller says 5 s passed: frames after it follow its clock
    assert abs(clock.frame_time(1) - 5.0) < 1e-9
