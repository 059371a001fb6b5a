"""`har train`'s note when other processes already keep the CPU busy."""

from __future__ import annotations

from cli.common import busy_cpu_hint


def test_no_note_on_an_idle_machine():
    assert busy_cpu_hint(4.5, None, load=0.3, cores=2) is None
    assert busy_cpu_hint(4.5, None, load=3.0, cores=16) is None  # 13 cores free


def test_busy_machine_names_the_load_the_budget_and_the_thread_setting():
    hint = busy_cpu_hint(4.5, None, load=2.1, cores=2)
    assert "load average 2.1 on 2 cores" in hint
    assert "4.5-minute time budget will fit fewer epochs" in hint
    assert "parameters.trainer.num_threads" in hint


def test_without_a_budget_or_with_threads_set_it_says_less():
    hint = busy_cpu_hint(None, 1, load=1.0, cores=2)
    assert "time budget" not in hint and "num_threads" not in hint
    assert hint.endswith("Run it when the CPU is free.")


def test_an_unreadable_load_gives_no_note(monkeypatch):
    def unavailable():
        raise OSError("no load average here")

    monkeypatch.setattr("cli.common.os.getloadavg", unavailable)
    assert busy_cpu_hint(4.5, None) is None
