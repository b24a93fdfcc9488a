"""The benchmark runner: figures, percentiles, and a report that keeps what it did not rerun."""

import sys
import types

import pytest

from bench import run_all
from bench.common import BenchmarkUnavailable, Figure, percentile, summarize


def test_percentile_interpolates_like_numpy():
    values = [10, 20, 30, 40]
    assert percentile(values, 0) == 10
    assert percentile(values, 100) == 40
    assert percentile(values, 50) == 25
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([7], 99) == 7


def test_percentile_of_nothing_is_an_error_not_a_zero():
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summarize_reports_milliseconds():
    assert summarize([0.001, 0.002, 0.003]) == {"p50": 2.0, "p95": pytest.approx(2.9), "p99": pytest.approx(2.98),
                                                 "max": 3.0}


def test_a_figure_has_a_ratio_only_with_a_nonzero_floor():
    assert Figure("rate", 50, "ops/s", floor=200).ratio == 0.25
    assert Figure("rate", 50, "ops/s").ratio is None
    assert Figure("rate", 50, "ops/s", floor=0).ratio is None


def test_the_table_escapes_pipes_and_shows_the_ratio():
    table = run_all.figures_table([Figure("a|b", 1234.5, "ms", goal="< 2 s", floor=617.25, note="x")])
    row = table.splitlines()[2]
    assert "a\\|b" in row and "1,234" in row and "| 2.00 |" in row and "< 2 s" in row


@pytest.fixture
def fake_modules(monkeypatch, tmp_path):
    def install(name, run):
        module = types.ModuleType(f"bench.{name}")
        module.__doc__ = f"What {name} measures."
        module.run = run
        monkeypatch.setitem(sys.modules, f"bench.{name}", module)

    monkeypatch.setattr(run_all, "REPORT", tmp_path / "benchmarks.md")
    monkeypatch.setattr(run_all, "discover", lambda: ["bench_bad", "bench_good", "bench_missing"])
    monkeypatch.setattr(run_all, "machine", lambda: {"CPU": "Test CPU", "cores": "1", "memory": "1 GiB",
                                                     "PostgreSQL": "none"})

    def missing():
        raise BenchmarkUnavailable("no PostgreSQL here")

    def bad():
        raise ZeroDivisionError("boom")

    install("bench_good", lambda: [Figure("speed", 42.0, "ops/s", floor=84.0)])
    install("bench_bad", bad)
    install("bench_missing", missing)
    return run_all.REPORT


def test_a_failing_module_is_reported_and_the_others_still_run(fake_modules):
    assert run_all.main([]) == 1
    report = fake_modules.read_text()
    assert "ZeroDivisionError: boom" in report and "**Failed**" in report
    assert "| speed | 42.0 | ops/s |  | 84.0 | 0.50 |" in report
    assert "**Skipped**" in report and "no PostgreSQL here" in report
    assert "What bench_good measures." in report and "Test CPU" in report


def test_running_one_module_keeps_the_other_sections(fake_modules):
    run_all.main([])
    before = fake_modules.read_text()
    bad_section = before[before.index("<!-- bench:bench_bad -->"):before.index("<!-- /bench:bench_bad -->")]

    sys.modules["bench.bench_good"].run = lambda: [Figure("speed", 50.0, "ops/s")]
    assert run_all.main(["good"]) == 0
    after = fake_modules.read_text()
    assert bad_section in after
    assert "| speed | 50.0 |" in after and "| speed | 42.0 |" not in after
    assert after.count("<!-- bench:bench_good -->") == 1


def test_an_unknown_benchmark_name_is_refused(fake_modules):
    with pytest.raises(SystemExit):
        run_all.main(["nonexistent"])
    assert not fake_modules.exists()


@pytest.mark.parametrize(("figure", "expected"), [
    (Figure("added", 4.0, "ms", goal="< 5 ms"), True),
    (Figure("added", 5.0, "ms", goal="< 5 ms"), False),
    (Figure("worst", 1100, "ms", goal="≤ 1100 ms", floor=1000), True),
    (Figure("worst", 1113, "ms", goal="≤ 1100 ms", floor=1000), False),
    (Figure("rate", 1_250, "deliveries/s", goal="≥ 300"), True),
    (Figure("rate", 299.9, "deliveries/s", goal="≥ 300"), False),
    (Figure("rate", 60, "events/s", goal="≥ 50% of the floor", floor=100), True),
    (Figure("rate", 40, "events/s", goal="≥ 50% of the floor", floor=100), False),
    (Figure("failed", 0, "flows", goal="0"), True),
    (Figure("failed", 2, "flows", goal="0"), False),
])
def test_a_checkable_goal_gets_a_verdict(figure, expected):
    assert run_all.meets_goal(figure) is expected


@pytest.mark.parametrize("figure", [
    Figure("cpu", 12, "ms", goal="lower is better"),
    Figure("rate", 60, "events/s", goal="≥ 50% of the floor"),  # no floor: no ratio to judge
    Figure("rate", 60, "events/s"),
])
def test_a_direction_or_a_goal_without_its_floor_gets_no_verdict(figure):
    assert run_all.meets_goal(figure) is None


def test_the_report_gathers_every_checkable_goal_at_the_top_with_its_floor(fake_modules, monkeypatch):
    sys.modules["bench.bench_good"].run = lambda: [
        Figure("added latency", 7.5, "ms", goal="< 5 ms"),
        Figure("rate", 90, "ops/s", goal="≥ 80% of the floor", floor=100),
        Figure("cpu", 3, "ms", goal="lower is better"),
    ]
    run_all.main(["good"])
    report = fake_modules.read_text()
    glance = report[report.index("## Goals at a glance"):report.index("<!-- bench:")]
    assert "| bench_good | added latency | 7.50 ms | < 5 ms |  |  | **no** |" in glance
    assert "| bench_good | rate | 90.0 ops/s | ≥ 80% of the floor | 100 | 0.90 | yes |" in glance
    assert "cpu" not in glance
    assert "| added latency | 7.50 | ms | < 5 ms |  |  | **no** |" in report


def test_a_missed_goal_is_listed_under_the_glance_with_its_reason(fake_modules):
    sys.modules["bench.bench_good"].run = lambda: [
        Figure("added latency", 7.5, "ms", goal="< 5 ms", note="the gate's TLS handshake; a kept-alive pool would meet it"),
        Figure("rate", 90, "ops/s", goal="≥ 80% of the floor", floor=100, note="fine"),
    ]
    run_all.main(["good"])
    report = fake_modules.read_text()
    glance = report[report.index("## Goals at a glance"):report.index("<!-- bench:")]
    assert "- bench_good, added latency: the gate's TLS handshake; a kept-alive pool would meet it" in glance
    assert "fine" not in glance


def test_a_failed_benchmark_is_one_line_beside_its_last_good_figures(fake_modules):
    sys.modules["bench.bench_bad"].run = lambda: [Figure("rate", 300, "ops/s", goal="≥ 200")]
    assert run_all.main(["bad"]) == 0

    def fails():
        raise RuntimeError("worker never ready: see /work/main/var/worker.log\nTraceback (most recent call last)")

    sys.modules["bench.bench_bad"].run = fails
    assert run_all.main(["bad"]) == 1
    report = fake_modules.read_text()
    section = report[report.index("<!-- bench:bench_bad -->"):report.index("<!-- /bench:bench_bad -->")]
    assert "**Failed**" in section and "RuntimeError: worker never ready: see …" in section
    assert "Traceback" not in section and "/work/" not in section and "```" not in section
    assert "Last good figures (" in section and "| rate | 300 | ops/s | ≥ 200 |" in section

    assert run_all.main(["bad"]) == 1  # failing again keeps the same last good figures
    again = fake_modules.read_text()
    assert again.count("| rate | 300 | ops/s |") == 1 and "Last good figures (" in again


def test_smoke_fails_on_a_missed_goal_and_leaves_the_docs_alone(fake_modules, monkeypatch, tmp_path):
    monkeypatch.setattr(run_all, "SMOKE_REPORT", tmp_path / "smoke.md")
    monkeypatch.setattr(run_all, "discover", lambda: ["bench_good"])
    sys.modules["bench.bench_good"].run = lambda: [Figure("sold", 41, "tickets", goal="= 40")]
    assert run_all.main(["--smoke"]) == 1
    assert not fake_modules.exists() and "**no**" in (tmp_path / "smoke.md").read_text()

    sys.modules["bench.bench_good"].run = lambda: [Figure("sold", 40, "tickets", goal="= 40"),
                                                   Figure("rate", 90, "ops/s", goal="≥ 100")]
    monkeypatch.delenv("BENCH_SMOKE_STRICT", raising=False)
    assert run_all.main(["--smoke"]) == 0  # a speed goal missed in a small run is said, not judged
    monkeypatch.setenv("BENCH_SMOKE_STRICT", "1")
    assert run_all.main(["--smoke"]) == 1


@pytest.mark.parametrize(("goal", "exact"), [("0", True), ("= 200", True), ("≥ 300", False), ("< 100 ms", False),
                                             ("≥ 20% of the floor", False), ("lower is better", False)])
def test_goals_of_exactness_are_told_from_goals_of_speed(goal, exact):
    assert run_all.is_exact(goal) is exact


def test_smoke_sizes_every_benchmark_small(monkeypatch):
    # Every size knob a benchmark reads is set small by --smoke (a new knob must be added there).
    import re
    from pathlib import Path

    knobs = set()
    for path in Path(run_all.BENCH_DIR).glob("bench_*.py"):
        knobs |= set(re.findall(r'os\.environ\.get\("(BENCH_[A-Z_]+)"', path.read_text()))
    sizes = {k for k in knobs if not k.endswith(("_URL", "_WORKERS", "_THREADS", "_CLIENTS", "_DELAY_MS"))
             and k not in ("BENCH_WORKERS", "BENCH_CLIENTS")}
    assert sizes <= set(run_all.SMOKE_SIZES), sorted(sizes - set(run_all.SMOKE_SIZES))


def test_the_benchmarks_page_holds_no_traceback_and_no_machine_path():
    from pathlib import Path

    page = (Path(run_all.ROOT) / "docs" / "benchmarks.md").read_text()
    for telltale in ("Traceback", "site-packages", "/work/", "/root/", "/home/", "/tmp/", "/usr/"):
        assert telltale not in page
