"""`check` on the whole corpus of learners (tests/learners/, see tests/learners/corpus.py).

Scored as a learner would judge it: every fault flagged, at the right first step, on the right
parameters, described by a hypothesis that fits (reproduces every departing update, and is the
mistake the file makes), in fitting words; and no correct learner flagged. The score table is
printed (`pytest tests/test_check_corpus.py -s` shows it; the README quotes a real run).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from harness.check.diagnose import Diagnosis
from harness.check.findings import LOSS, RelationKind, distinct_mistakes
from harness.check.phrases import optimizer_name
from tests.learners.corpus import Learner, checked, corpus

HANDOVER = ("layout", "precision:float32", "returned:start", "epoch_mean")
DESCRIBED_AT_LEAST = 0.95


def families(d: Diagnosis) -> set[str]:
    """What the diagnosis says the learner does, as data (hypothesis families and findings)."""
    found = {"layout"} if d.layouts else set()
    found |= {f"precision:{d.precision}"} if d.precision else set()
    found |= {f"returned:{d.returned.how}"} if d.returned else set()
    found |= {"epoch_mean"} if d.epoch_mean else set()
    for _, relation in distinct_mistakes(d.steps or []):
        if relation.kind is RelationKind.NOT_FINITE:
            found.add("not_finite")
        for hypothesis in (relation.hypothesis, relation.also):
            if relation.kind is RelationKind.EXPLAINED and hypothesis is not None:
                found.add(hypothesis.family)
    return found


def named_parameters(d: Diagnosis) -> set[str]:
    """The parameters the diagnosis names as departing (from any finding)."""
    names = {layout.name for layout in d.layouts}
    names |= set(d.returned.names) if d.returned else set()
    return names | {name for name, _ in distinct_mistakes(d.steps or []) if name != LOSS}


def unexplained(d: Diagnosis) -> bool:
    """Does any departing update go without a hypothesis that reproduces it?"""
    return any(r.kind is RelationKind.CLOSEST for _, r in distinct_mistakes(d.steps or []))


def first_step(d: Diagnosis) -> int | None:
    return next((f.step for f in d.steps or [] if not f.agrees), None)


@dataclass
class Score:
    learner: Learner
    flagged: bool
    step: bool
    params: bool
    described: bool
    words: bool
    said: str  # the families found, for the table

    @property
    def ok(self) -> bool:
        return (not self.flagged if self.learner.fault is None else
                self.flagged and self.step and self.params)


def score(learner: Learner) -> Score:
    diagnoses, failed = checked(learner.target, learner.expected["case"])
    assert not failed, [r.message for r in failed]
    e = learner.expected
    own = diagnoses[0]  # the case's own start (then the seeded asymmetric one, if any)
    said = sorted(set().union(*(families(d) for d in diagnoses)))
    if learner.fault is None:
        return Score(learner, any(not d.agrees for d in diagnoses), True, True, True, True,
                     ", ".join(said) or "-")
    steps = [e["step"], e.get("asymmetric_step", e["step"])]
    return Score(
        learner,
        flagged=all(not d.agrees for d in diagnoses),
        step=all(first_step(d) == s for d, s in zip(diagnoses, steps, strict=False)),
        params=("precision" in learner.fault or
                all(named_parameters(d) == set(e["params"]) for d in diagnoses)),
        described=learner.fault in families(own) and not unexplained(own),
        words=any(e["words"] in d.text() for d in diagnoses),
        said=", ".join(said))


@cache
def scores() -> tuple[Score, ...]:
    return tuple(score(learner) for learner in corpus())


def table(found: tuple[Score, ...]) -> str:
    """The score table, markdown."""
    mark = {True: "yes", False: "**no**"}
    rows = ["| learner | style | case | fault | flagged | step | parameters | described | "
            "words |", "|---|---|---|---|---|---|---|---|---|"]
    for s in found:
        e = s.learner.expected
        if s.learner.fault is None:
            rows.append(f"| {s.learner.name} | {s.learner.style} | {e['case']} | (correct) | "
                        f"{'**false alarm**' if s.flagged else 'no'} | | | | |")
            continue
        rows.append(f"| {s.learner.name} | {s.learner.style} | {e['case']} | {s.learner.fault} "
                    f"| {mark[s.flagged]} | {mark[s.step]} | {mark[s.params]} | "
                    f"{mark[s.described]} | {mark[s.words]} |")
    faults = [s for s in found if s.learner.fault is not None]
    correct = [s for s in found if s.learner.fault is None]

    def share(attr: str) -> str:
        hits = sum(getattr(s, attr) for s in faults)
        return f"{hits}/{len(faults)} ({hits / len(faults):.0%})"

    rows += ["", f"faults: {len(faults)}; flagged {share('flagged')}, at the right step "
             f"{share('step')}, on the right parameters {share('params')}, described by a "
             f"fitting hypothesis {share('described')}, in fitting words {share('words')}",
             f"correct learners: {len(correct)}; false alarms "
             f"{sum(s.flagged for s in correct)}/{len(correct)}",
             f"styles: {', '.join(sorted({s.learner.style for s in found}))}; cases: "
             f"{', '.join(sorted({s.learner.expected['case'] for s in found}))}"]
    return "\n".join(rows)


def test_the_corpus_is_big_enough_and_varied():
    found = corpus()
    faults = [learner for learner in found if learner.fault is not None]
    correct = [learner for learner in found if learner.fault is None]
    assert len(faults) >= 40 and len(correct) >= 10
    assert {learner.style for learner in found} >= {"loops", "generic", "layers", "columns",
                                                    "einsum"}
    assert {learner.style for learner in correct} >= {"loops", "generic", "layers", "columns",
                                                      "einsum"}
    cases = {learner.expected["case"] for learner in found}
    assert cases >= {"regression", "classification", "placement-deep", "xor", "cases/tanh.toml",
                     "cases/relu-short.toml", "cases/softmax.toml"}


def test_every_fault_is_flagged_at_its_step_and_parameters_and_no_correct_code_is():
    found = scores()
    print(table(found))
    wrong = [(s.learner.name, s.said) for s in found if not s.ok]
    assert not wrong, table(found)
    faults = [s for s in found if s.learner.fault is not None]
    described = sum(s.described for s in faults) / len(faults)
    assert described >= DESCRIBED_AT_LEAST, table(found)
    assert all(s.words for s in faults), [s.learner.name for s in faults if not s.words]


def test_the_verdict_and_every_line_agree():
    for learner in corpus():
        for d in checked(learner.target, learner.expected["case"])[0]:
            # a diagnosis that agrees lists no departure; one that departs lists why
            assert d.agrees == (d.departures == []), d.text()
            if d.agrees and d.steps is not None:
                said = f"every step's update agrees with textbook {optimizer_name(d.optimizer)}"
                assert said in d.lines, d.text()


def test_a_hypothesis_is_named_only_where_the_learner_makes_that_mistake():
    # "starts from another parameter" fits by accident on constant starts unless judged at the
    # parameter's own scale: it must come up only for the learner that makes that slip
    for learner in corpus():
        text = "\n".join(d.text() for d in checked(learner.target,
                                                   learner.expected["case"])[0])
        if learner.fault not in ("starts_from_other",):
            assert "starts from" not in text, text
