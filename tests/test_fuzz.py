"""fuzz: every drawn case is a valid case file that reads back equal; the shrinker; a real
finding shrunk and classified; a small campaign that replays from its seed."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from cases import load_case
from cases.loader import CaseError, case_names
from cases.model import Case, Expectations, Init, Layer
from harness.fuzz import strategy
from harness.fuzz.campaign import Campaign, Finding, Settings
from harness.fuzz.casefile import same_case, to_toml, write_case
from harness.fuzz.judging import Cause, classify, failing_step, run_cases
from harness.fuzz.shrink import Shrinker
from harness.outcome import Outcome
from tests.conftest import _session_pool, run_cli


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drawn")


@settings(max_examples=80, database=None, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(strategy.cases())
def test_every_drawn_case_is_a_valid_case_file_that_reads_back_equal(scratch, case):
    back = write_case(case, scratch / "drawn.toml")
    assert same_case(case, back)
    assert 1 <= len(case.layers) <= strategy.MAX_DEPTH
    assert all(1 <= layer.units <= strategy.MAX_WIDTH for layer in case.layers[:-1])
    assert 2 <= case.rows <= strategy.MAX_ROWS and case.steps <= strategy.MAX_STEPS
    assert case.layers[-1].activation in strategy.OUTPUT[case.loss]
    assert case.optimizer.plain


@pytest.mark.parametrize("name", [n for n in case_names() if not n.startswith("digits")])
def test_every_shipped_case_reads_back_equal(name, tmp_path):
    # (digits: 1,797 rows of the built-in dataset, 5 s to write inline; no field the others lack)
    case = load_case(name)
    assert same_case(case, write_case(case, tmp_path / f"{name}.toml", ("a comment",)))


def test_same_case_sees_a_bit_and_a_field(tmp_path):
    case = load_case("regression")
    x = case.x.copy()
    x[0, 0] = np.nextafter(x[0, 0], np.inf)
    assert not same_case(case, dataclasses.replace(case, x=x))
    assert not same_case(case, dataclasses.replace(case, learning_rate=0.002))
    text = to_toml(dataclasses.replace(case, description='a "quoted"\nline\x7f'))
    (tmp_path / "q.toml").write_text(text)
    assert load_case(tmp_path / "q.toml").description == 'a "quoted"\nline\x7f'


def _big_case() -> Case:
    """5 layers (a tanh in the middle), 12 rows of 3 features, shuffled, random init."""
    rng = np.random.default_rng(0)
    layers = (Layer(6, "relu"), Layer(5, "sigmoid"), Layer(4, "tanh"), Layer(3, "relu"),
              Layer(1, "linear"))
    case = load_case("regression")
    return dataclasses.replace(
        case, features=("a", "b", "c"), inputs=3, x=np.round(rng.normal(size=(12, 3)), 3),
        y=np.round(rng.normal(size=(12, 1)), 3), layers=layers, batch_size=5, epochs=4,
        order="shuffle", shuffle_seed=3, expect=Expectations(),
        init=Init(kind="random", distribution="normal", std=0.37, seed=9, generator="legacy",
                  bias=0.3))


def test_the_shrinker_keeps_the_cause_and_reaches_the_smallest_case(tmp_path):
    # The "failure": a tanh layer in float64 (as keras-jax's tanh-float32); no engine runs.
    target = Cause("explained", "tanh-float32")
    made = []

    def materialize(case):
        made.append(case)
        try:
            return write_case(case, tmp_path / f"c{len(made)}.toml")
        except CaseError:
            return None

    def evaluate(cases):
        return [(target if any(layer.activation == "tanh" for layer in c.layers) else None, 1)
                for c in cases]

    start = write_case(_big_case(), tmp_path / "start.toml")
    shrunk = Shrinker(target, evaluate, materialize, limit=200).shrink(start, 2)
    case = shrunk.case
    assert [(layer.units, layer.activation) for layer in case.layers] == [(1, "tanh"),
                                                                          (1, "linear")]
    assert (case.rows, case.inputs, case.epochs, case.order) == (1, 1, 1, "file")
    assert not any(layer.bias for layer in case.layers) and case.init.kind == "constant"
    assert not shrunk.exhausted and shrunk.evaluations < 100
    assert same_case(case, load_case(case.path))  # every candidate went through the loader
    # a limit of 3 ends a 5-layer, 12-row case still larger than 3 layers and 8 rows: it gets
    # a second limit, once, and then stops
    limited = Shrinker(target, evaluate, materialize, limit=3).shrink(start, 2)
    assert limited.exhausted and limited.extended and limited.evaluations == 6
    small = Shrinker(target, evaluate, materialize, limit=3).shrink(case, 2)  # already minimal
    assert not small.extended


def test_a_saturation_that_a_chain_of_widths_built_shrinks_to_fewer_layers(tmp_path):
    # seen in a campaign (seed 3, bce-clip on Keras): 1-4-12-1 layers under a constant 0.9 on
    # x = 0 put the output sigmoid past Keras's clip, and no layer could go without losing it.
    # The "failure" here: the reference's first prediction is past 1 - 1e-7.
    from harness.contract import make_request
    from reference.mlp import forward

    target = Cause("explained", "bce-clip")
    chain = dataclasses.replace(
        load_case("regression"), features=("x",), inputs=1, x=np.zeros((1, 1)),
        y=np.full((1, 1), 0.12), loss="bce", batch_size=1, epochs=1, expect=Expectations(),
        layers=(Layer(1, "sigmoid", bias=False), Layer(4, "linear", bias=False),
                Layer(12, "linear", bias=False), Layer(1, "sigmoid", bias=False)),
        init=Init(kind="constant", weight=0.9))

    def saturated(case: Case) -> bool:
        request = make_request(case, "float64")
        return bool(forward(request.params, case.layers, request.x)[1][-1].max() > 1 - 1e-7)

    def materialize(case):
        try:
            return write_case(case, tmp_path / f"c{abs(hash(to_toml(case)))}.toml")
        except CaseError:
            return None

    def evaluate(cases):
        return [(target if saturated(c) else None, 1) for c in cases]

    start = write_case(chain, tmp_path / "chain.toml")
    assert saturated(start)
    shrunk = Shrinker(target, evaluate, materialize, limit=50).shrink(start, 1)
    assert len(shrunk.case.layers) <= 3 and saturated(shrunk.case)
    assert shrunk.case.init.weight > chain.init.weight  # what the fewer layers needed


def test_a_real_finding_is_shrunk_classified_and_written(tmp_path):
    # torch clamps BCE's logs at -100 where the float32 reference takes log(0) (saturating-bce)
    pool = _session_pool()
    case = dataclasses.replace(load_case("saturating-bce"), dtype="float32")
    campaign = Campaign(Settings(seed=0, engines=["torch"], out=tmp_path, shrink_limit=16),
                        pool, log=lambda text: None)
    case = write_case(case, campaign.scratch / "saturating.toml")
    run, floors = run_cases([case], ["torch"], pool=pool, workers=None, timeout=120)
    causes = classify(run, floors, pool=pool, workers=None, timeout=120)
    cause = causes[(case.name, "torch")]
    assert cause == Cause("explained", "bce-log-clamp")
    entry = next(e for e in run.entries if e.engine == "torch")
    finding = Finding(cause, "torch", "float32", 0, [0])
    campaign.shrink(finding, entry, failing_step(run, entry))
    assert finding.label == "explained: bce-log-clamp"
    assert finding.path == tmp_path / "found" / "explained-bce-log-clamp.toml"
    written = load_case(finding.path)
    assert len(written.layers) <= 3 and written.rows <= 8
    assert finding.size["steps"] < case.steps
    assert finding.reproduce.startswith(f"python -m harness compare --case {finding.path} "
                                        "--engine torch --dtype float32")
    text = finding.path.read_text()
    assert text.startswith("# explained: bce-log-clamp (torch float32)\n# reproduce: ")
    assert any("matches the float32 reference computed with bce-log-clamp" in line
               for line in finding.text)
    # compare on the written file fails the same way
    again, floors = run_cases([written], ["torch"], pool=pool, workers=None, timeout=120)
    assert classify(again, floors, pool=pool, workers=None, timeout=120) == {
        (written.name, "torch"): cause}
    shutil.rmtree(campaign.scratch)


def test_a_campaign_replays_from_its_seed_and_writes_its_report(tmp_path):
    pool = _session_pool()

    def campaign(out):
        settings = Settings(seed=11, engines=["torch"], cases=5, out=out, batch=3)
        return Campaign(settings, pool, log=lambda text: None).run()

    first, second = campaign(tmp_path / "a"), campaign(tmp_path / "b")
    assert len(first.records) == 5 and first.stopped_by == "the case count"
    assert [dataclasses.asdict(r) for r in first.records] == \
        [dataclasses.asdict(r) for r in second.records]
    assert all(r.outcomes["torch"] in (Outcome.PASS, Outcome.DIVERGED_ALIKE,
                                       Outcome.EXPLAINED, Outcome.FAIL)
               for r in first.records)
    # the command line: the same seed draws the same cases, with the same bits
    out = tmp_path / "cli"
    done = run_cli("fuzz", "--cases", "5", "--seed", "11", "--engine", "torch", "--batch", "3",
                   "--out", str(out), "--quiet")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads((out / "fuzz.json").read_text())
    assert report["cases"] == [dataclasses.asdict(r) for r in first.records]
    assert report["seed"] == 11 and report["summary"]["cases"] == 5
    assert report["summary"]["comparisons"] == 5
    assert report["replay"].startswith("python -m harness fuzz --seed 11 --cases 5 --engine "
                                       "torch")
    markdown = (out / "fuzz.md").read_text()
    assert "# Fuzz report" in markdown and "Seed **11**" in markdown
    assert "seed 11: 5 cases, 5 comparisons" in done.stdout
    for path in (out / "found").glob("*.toml"):
        assert load_case(path).rows <= 8


def test_fuzz_options_are_checked_before_anything_runs(tmp_path):
    done = run_cli("fuzz", "--budget", "soon", "--out", str(tmp_path))
    assert done.returncode == 2 and "--budget" in done.stderr
    done = run_cli("fuzz", "--cases", "3", "--budget", "1m")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr
    done = run_cli("fuzz", "--cases", "1", "--engine", "nope", "--out", str(tmp_path))
    assert done.returncode == 2 and "unknown engine 'nope'" in done.stderr
