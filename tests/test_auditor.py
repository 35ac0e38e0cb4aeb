"""The convention auditor: a failure that a named framework convention explains is named as such.

NumPy-only checks first (a trace made by the reference under one convention is explained by
exactly that one); then a real torch engine whose BCE was replaced by a clipped one
(tests/injected.py) must be explained by `bce-clip`, while plain torch passes."""

from __future__ import annotations

import dataclasses

import pytest

from adapters.registry import ENGINES
from cases import load_case
from harness.compare import run_compare
from harness.contract import make_request
from harness.judge.auditor import Explanation, audit, cited, optional
from harness.judge.explain import citation_warnings
from harness.judge.matrix import Entry
from harness.judge.noise import NoiseFloors
from harness.judge.verdict import Comparison, compare_traces
from harness.outcome import Outcome
from reference import staged
from reference.conventions import CONVENTIONS, Convention, applicable, candidates
from tests import injected
from tests.conftest import _session_pool

C = Convention
EXPLAINED = [
    # (case, dtype, the conventions a pretend engine computes with)
    ("saturating-bce", "float32", (C.BCE_LOG_CLAMP,)),
    ("saturating-bce", "float32", (C.BCE_CLIP,)),
    ("saturating-bce", "float32", (C.BCE_FROM_LOGITS,)),
    ("saturating-bce", "float64", (C.BCE_CLIP,)),
    ("saturating-bce", "float64", (C.BCE_CLIP, C.LOSS_MEAN_FLOAT32)),
    ("confident-softmax", "float64", (C.TANH_FLOAT32,)),
    ("regression", "float64", (C.MATMUL_FLOAT32,)),
]


@pytest.mark.parametrize(("name", "dtype", "conventions"), EXPLAINED)
def test_a_convention_is_named_when_it_explains_a_failure(name, dtype, conventions) -> None:
    case = load_case(name)
    request = make_request(case, dtype)
    pretend = staged.train(request, conventions)
    floors = NoiseFloors()
    textbook = staged.train(request)
    failing = compare_traces(case, "pretend", dtype, pretend, textbook, dtype,
                             floors.get(case, dtype, base=textbook))
    assert failing.verdict == Outcome.FAIL
    explanation = audit(case, "pretend", dtype, pretend, dtype, floors)
    assert explanation is not None
    assert set(explanation.conventions) == set(conventions)
    assert explanation.comparison.verdict in (Outcome.PASS, Outcome.DIVERGED_ALIKE)


def test_the_auditor_stops_where_no_later_set_can_rank_first() -> None:
    """The auditor leaves out the sets that cannot win (larger, or of the winning size with more
    conventions the source does not name for the engine): its answer is the one every set of
    that size, each judged in full, ranks first."""
    case, dtype, engine = load_case("saturating-bce"), "float64", "keras-torch"
    pretend = staged.train(make_request(case, dtype), (C.BCE_CLIP, C.MATMUL_FLOAT32))
    floors = NoiseFloors()
    explanation = audit(case, engine, dtype, pretend, dtype, floors)
    assert explanation is not None
    size = len(explanation.conventions)
    ranked = []
    for conventions in candidates(case, dtype, engine):
        if len(conventions) != size:
            continue
        reference = floors.base(case, dtype, conventions)
        comparison = compare_traces(case, engine, dtype, pretend, reference, dtype,
                                    floors.get(case, dtype, conventions, base=reference),
                                    judge_as=dtype)
        if comparison.verdict in (Outcome.PASS, Outcome.DIVERGED_ALIKE):
            unknown = sum(engine not in CONVENTIONS[c].engines for c in conventions)
            ranked.append((unknown, comparison.used, conventions))
    assert min(ranked)[2] == explanation.conventions
    assert len({unknown for unknown, _, _ in ranked}) > 1  # sets of another rank also pass
    assert explanation.tried < len([c for c in candidates(case, dtype, engine)
                                    if len(c) <= size])


def test_a_real_difference_is_not_explained_away() -> None:
    # 10 of classification's 50 epochs: every one of its 35 convention sets is still tried
    case = dataclasses.replace(load_case("classification"), epochs=10)
    request = make_request(case, "float64")
    wrong = staged.train(request)
    wrong.final_params["W1"] = wrong.final_params["W1"] * 1.001
    assert audit(case, "pretend", "float64", wrong, "float64", NoiseFloors()) is None


def test_every_convention_has_a_source_and_the_candidates_respect_their_groups() -> None:
    for convention, info in CONVENTIONS.items():
        assert info.convention == convention
        assert " : " in info.source and info.formula and info.engines
    case = load_case("saturating-bce")
    assert applicable(case, "float32") == [C.BCE_LOG_CLAMP, C.BCE_CLIP, C.BCE_CLIP_JAX,
                                            C.BCE_FROM_LOGITS, C.SIGMOID_TF]
    for conventions in candidates(case, "float64"):
        groups = [CONVENTIONS[c].group for c in conventions]
        assert len(groups) == len(set(groups))  # never two loss forms at once
    assert candidates(case, "float32", "torch")[0] == (C.BCE_LOG_CLAMP,)  # known ones first


def test_an_expected_failure_may_cite_a_convention_and_is_checked() -> None:
    assert cited("convention: bce-clip (Keras clips p)") == (C.BCE_CLIP,)
    case = load_case("saturating-bce")
    comparison = Comparison(case.name, "keras-jax", "float32", Outcome.FAIL,
                            expected_failure="convention: bce-log-clamp")
    entry = Entry(case, "keras-jax", "float32", comparison, None)
    (warning,) = citation_warnings([entry])
    assert "cites bce-log-clamp, but the convention auditor finds no convention" in warning


def test_a_cited_convention_marked_optional_may_be_found_or_not() -> None:
    reason = "convention: adam-epsilon-hat, cce-clip? (Keras clips the probabilities)"
    assert cited(reason) == (C.ADAM_EPSILON_HAT,) and optional(reason) == (C.CCE_CLIP,)
    case = load_case("digits-adam")
    comparison = Comparison(case.name, "keras-torch", "float32", Outcome.FAIL,
                            expected_failure=reason)
    entry = Entry(case, "keras-torch", "float32", comparison, None)

    def found(*conventions: Convention) -> list[str]:
        comparison.explanation = Explanation(conventions, comparison, tried=1)
        return citation_warnings([entry])

    assert found(C.ADAM_EPSILON_HAT) == [] and found(C.ADAM_EPSILON_HAT, C.CCE_CLIP) == []
    (missing,) = found(C.CCE_CLIP)  # the required one is not optional
    assert "cites adam-epsilon-hat, cce-clip?, but the convention auditor finds cce-clip" in missing
    (extra,) = found(C.ADAM_EPSILON_HAT, C.BCE_CLIP)
    assert "finds adam-epsilon-hat, bce-clip" in extra


@pytest.mark.frameworks
def test_a_clipped_bce_injected_into_torch_is_named_bce_clip(monkeypatch) -> None:
    name = "torch-clipped-bce"
    monkeypatch.setitem(ENGINES, name, injected.spec(name, "clipped-bce"))
    run = run_compare([load_case("saturating-bce")], ["torch", name], ["float64"],
                      expectations=[], pool=_session_pool())  # the session's torch worker
    outcomes = {e.engine: e.comparison for e in run.entries}
    assert outcomes["torch"].outcome == Outcome.PASS  # float64 torch needs no convention
    clipped = outcomes[name]
    assert clipped.outcome == Outcome.EXPLAINED
    assert clipped.explanation.conventions == (C.BCE_CLIP,)
    assert not clipped.explanation.known_for_engine  # torch is not known to clip: flagged
    # the staged probe shows where the clipping acts, and agrees under the convention
    assert clipped.probe.first_parting is not None
    assert clipped.explanation.probe.agrees
    assert any("matches the float64 reference computed with bce-clip" in s
               for s in run.findings["saturating-bce"])


def test_bce_clip_jax_halves_the_gradient_only_at_an_exact_clip_bound() -> None:
    """jnp.clip is maximum then minimum; JAX's rule for a tie (jax/_src/lax/lax.py :
    _balanced_eq) passes half the gradient. In float32, 1 - 1e-7 is 1 - 2**-23, a value a
    saturated sigmoid reaches exactly (a fuzz finding: Keras/JAX, a bias-free sigmoid unit)."""
    import numpy as np

    from reference.numerics import Numerics

    f32 = np.float32
    p = np.array([[f32(1) - f32(2) ** -23], [f32(0.5)]], dtype=f32)
    z, y = np.zeros_like(p), np.array([[0.5], [0.0]], dtype=f32)
    clip, jax = (Numerics(np.dtype(f32), frozenset({c})).loss("bce", "sigmoid", z, p, y)
                 for c in (C.BCE_CLIP, C.BCE_CLIP_JAX))
    assert clip.value == jax.value
    assert jax.grad_prediction[0, 0] == clip.grad_prediction[0, 0] / 2  # the tie
    assert jax.grad_prediction[1, 0] == clip.grad_prediction[1, 0]  # inside: the same
