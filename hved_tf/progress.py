"""Progress of long work on the console: done / total, time left, and with `rate` the rate.

`Progress(label, total, unit)` with `.update(done, detail="")`: on a terminal one line
rewritten in place; when the output goes to a file or a pipe, a line at most every `every_s`
seconds and always the last one, so that a log shows the work going on without filling up.
`duration(seconds)` writes a time as "45 s", "12 min" or "3.4 h".
"""
from __future__ import annotations

import sys
import time


def duration(seconds):
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    def __init__(self, label, total, unit="", stream=None, every_s=30.0, start=None,
                 rate=False):
        self.label = label
        self.rate = rate
        self.total = max(int(total), 1)
        self.unit = unit
        self.stream = stream or sys.stdout
        self.every_s = float(every_s)
        self.start = time.time() if start is None else float(start)
        self.earlier_stages = start is not None
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_print = -float("inf")
        self.first = None          # (time, done) of the first update: the pace is taken from
                                   # there (`start` may include earlier stages of the work)

    def seconds_per_unit(self, done, now=None):
        now = time.time() if now is None else now
        if self.first is not None and done > self.first[1]:
            return (now - self.first[0]) / (done - self.first[1])
        if self.earlier_stages:   # `start` includes other work (and, with workers, their
            return None           # start-up): no pace before a second update
        return (now - self.start) / done if done else None

    def line(self, done, detail=""):
        """The progress line for `done` units (no printing)."""
        now = time.time()
        elapsed = now - self.start
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.label}: {done}/{self.total}{unit} ({duration(elapsed)}"
        pace = self.seconds_per_unit(done, now)
        if self.rate and pace:
            text += f", {1.0 / pace:.2f}{unit}/s"
        if 0 < done < self.total and pace is not None:
            text += f", about {duration(pace * (self.total - done))} left"
        text += ")"
        return f"{text} {detail}".rstrip()

    def update(self, done, detail=""):
        now = time.time()
        if self.first is None:
            self.first = (now, done)
        last = done >= self.total
        if self.tty:
            print(f"\r{self.line(done, detail)}\033[K", end="\n" if last else "",
                  file=self.stream, flush=True)
        elif last or now - self.last_print >= self.every_s:
            print(self.line(done, detail), file=self.stream, flush=True)
            self.last_print = now
