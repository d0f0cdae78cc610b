"""`lab soak` and `lab bench scale`: bad arguments get a message naming the argument (no
traceback, nothing started); the soak's tally and exit status. The tally is checked with a
stand-in for one bring-up (the live bring-up is what `lab soak` itself exercises)."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

import bench.soak as soak
from harness.cli import main
from harness.topology import load_topology

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["soak", "--count", "0"], "'--count'"),
        (["soak", "--count", "many"], "'--count'"),
        (["soak", "--max-minutes", "0"], "'--max-minutes'"),
        (["soak", "--chain", "lnd"], "'--chain'"),
        (["bench", "scale", "--nodes", "5,x"], "'--nodes'"),
        (["bench", "scale", "--nodes", "1,5"], "'--nodes'"),
        (["bench", "scale", "--degree", "0"], "'--degree'"),
    ],
)
def test_bad_options_are_named(args: list[str], names: str) -> None:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert names in r.output and "Traceback" not in r.output


def test_unknown_topology_is_named_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(soak, "one_bringup", lambda t, **_: started.append(t.name))
    r = CliRunner().invoke(main, ["soak", "star5", "star9", "--count", "1"])
    assert r.exit_code == 1
    assert "TOPOLOGY 'star9': no such topology" in r.output and "Traceback" not in r.output
    assert started == []


def test_an_invalid_topology_file_names_its_field(tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "bad.yaml"
    bad.write_text("name: x\nnodes:\n  - name: a\nchannels:\n  - {from: a, to: b, capacity_sat: 100000}\n")
    r = CliRunner().invoke(main, ["soak", str(bad), "--count", "1"])
    assert r.exit_code == 1 and "channels[0].to (line 5): unknown node 'b'" in r.output


def _sample(name: str, ready: float, retries: int = 0, failed: str = "", kept: list[str] | None = None) -> soak.Sample:
    return soak.Sample(name, ready, retries, 2 * retries, {}, failed=failed, kept=kept or [])


def test_tally_counts_retries_and_failures_and_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    script = iter([
        _sample("star5", 9.0), _sample("mesh8", 16.0),
        _sample("star5", 190.0, retries=1, kept=["/tmp/star5-a"]), _sample("mesh8", 17.0),
        _sample("star5", 10.0), _sample("mesh8", 300.0, retries=1, failed="timed out", kept=["/tmp/m-a", "/tmp/m-b"]),
    ])
    monkeypatch.setattr(soak, "one_bringup", lambda t, **_: next(script))
    r = CliRunner().invoke(main, ["soak", "star5", "mesh8", "--count", "3"])
    assert r.exit_code == 1, r.output
    assert "kept (star5): /tmp/star5-a" in r.output and "kept (mesh8): /tmp/m-b" in r.output


def test_summary_figures() -> None:
    s = soak.summarise("star5", [_sample("star5", t) for t in (10.0, 8.0, 9.0, 30.0)]
                       + [_sample("star5", 99.0, retries=1, failed="x")])
    assert (s.bringups, s.retried, s.failed, s.repair_rounds) == (5, 1, 1, 2)
    # Times of the four bring-ups that came up: median 9.5, nearest-rank p95 and max 30.
    assert (s.p50_s, s.p95_s, s.max_s) == (9.5, 30.0, 30.0)
    assert not soak.needs_attention([soak.summarise("pair", [_sample("pair", 3.0)])])
    assert math.isnan(soak.summarise("x", [_sample("x", 1.0, failed="boom")]).p50_s)


def test_max_minutes_bounds_the_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(x) for x in range(0, 10_000, 50))  # each look at the clock: 50 s later
    monkeypatch.setattr(soak.time, "monotonic", lambda: next(clock))
    seen: list[str] = []
    out = soak.run([load_topology("pair")], count=100, max_minutes=2, echo=seen.append,
                   bringup=lambda t, **_: _sample(t.name, 1.0))
    assert out[0].bringups < 100
    assert any("--max-minutes 2 reached" in line for line in seen)


def test_the_harness_counts_its_retries_and_keeps_their_directories(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from pathlib import Path

    from harness.errors import BringupRetried
    from tests.unit.test_bringup_retry import _harness_with_fake_bringup

    lab, attempts = _harness_with_fake_bringup(monkeypatch, Path(str(tmp_path)), stalls=1)
    assert lab.retries_used == 0 and lab.repair_rounds == 0
    with pytest.warns(BringupRetried):
        lab.start(retries=1)
    assert lab.retries_used == 1
    assert lab.retried_dirs == attempts[:1]
