"""Progress lines: done/total, the pace taken from the first update on (not from earlier
stages of the work), the rate and the time left."""
import io

from hved_tf import progress as progress_lib


def test_pace_rate_and_time_left_from_the_first_update(monkeypatch):
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress_lib.time, "time", lambda: clock["now"])
    out = io.StringIO()
    p = progress_lib.Progress("prepared", 10, "subjects", stream=out, every_s=0.0,
                              start=900.0, rate=True)      # 100 s of earlier stages
    p.update(0)
    clock["now"] += 20.0
    p.update(4)                                             # 5 s a subject since the first
    lines = out.getvalue().splitlines()
    assert lines[0] == "prepared: 0/10 subjects (2 min)"
    assert lines[1] == "prepared: 4/10 subjects (2 min, 0.20 subjects/s, about 30 s left)"
    clock["now"] += 30.0
    p.update(10)
    assert out.getvalue().splitlines()[-1] == "prepared: 10/10 subjects (2 min, 0.20 subjects/s)"


def test_no_time_left_from_a_first_update_after_earlier_stages(monkeypatch):
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress_lib.time, "time", lambda: clock["now"])
    out = io.StringIO()
    p = progress_lib.Progress("prepared", 24, "subjects", stream=out, every_s=0.0,
                              start=992.0, rate=True)      # 8 s: earlier stages, start-up
    p.update(1)
    clock["now"] += 4.0
    p.update(3)                                             # 2 s a subject since the first
    assert out.getvalue().splitlines() == [
        "prepared: 1/24 subjects (8 s)",
        "prepared: 3/24 subjects (12 s, 0.50 subjects/s, about 42 s left)"]
