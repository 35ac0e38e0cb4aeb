"""The Ray executor: one local Ray instance for the module; a small `compare` and a small fuzz
campaign through it give the bits of the same runs on local workers."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("ray", reason="ray is optional: pip install 'backprop-parity[ray]'")

from cases import load_case
from cases.model import DTYPES
from harness.cli import main
from harness.compare import run_compare
from harness.fuzz.campaign import Campaign, Settings
from harness.report.data import json_document
from harness.run.ray_executor import RayPool
from harness.run.runner import DEFAULT_MEMORY_LIMIT_MB
from tests.conftest import _session_pool


def _ray_children() -> list[str]:
    """Processes this test process started that are Ray's (raylet, GCS, workers)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and "ray" in command:
            found.append(command)
    return found


@pytest.fixture(scope="module")
def ray_pool():
    """A local Ray instance started here (as `--ray local` starts one), stopped at the end."""
    import ray

    pool = RayPool("local", DEFAULT_MEMORY_LIMIT_MB, cpus=2)
    assert pool.owned and ray.is_initialized()
    yield pool
    pool.close()
    assert not ray.is_initialized()
    assert not _ray_children(), "Ray left processes running"


def _results(document: dict) -> list[dict]:
    """parity.json's results, less what differs between any two runs (times, the process)."""
    results = json.loads(json.dumps(document, default=str))["results"]
    for result in results:
        result.pop("meta")
    return results


def test_compare_on_ray_gives_the_local_parity_results(ray_pool, tmp_path):
    cases = [load_case("regression"), load_case("bias-free-bce")]  # a failure: probed on Ray
    local = run_compare(cases, ["torch"], list(DTYPES), pool=_session_pool())
    on_ray = run_compare(cases, ["torch"], list(DTYPES), pool=ray_pool)
    expected = _results(json_document(local, "now"))
    assert len(expected) == 8 and _results(json_document(on_ray, "now")) == expected
    # the command line: `--ray local` with a Ray already running in this process uses it (and
    # leaves it running); parity.json holds the same results
    assert main(["compare", "--case", "regression", "--engine", "torch", "--dtype", "float64",
                 "--quiet", "--out", str(tmp_path), "--ray", "local"]) == 0
    written = _results(json.loads((tmp_path / "parity.json").read_text()))
    assert written == [r for r in expected if (r["case"], r["dtype"]) == ("regression",
                                                                         "float64")]


def test_a_campaign_on_ray_replays_the_local_campaign(ray_pool, tmp_path):
    def campaign(pool, out):
        settings = Settings(seed=5, engines=["torch"], cases=5, batch=5, out=out)
        return Campaign(settings, pool, log=lambda text: None).run()

    local = campaign(_session_pool(), tmp_path / "local")
    on_ray = campaign(ray_pool, tmp_path / "ray")
    assert len(local.records) == 5
    assert on_ray.records == local.records
    assert [f.cause for f in on_ray.findings] == [f.cause for f in local.findings]


def test_a_run_on_ray_keeps_the_harness_timeout(ray_pool):
    from harness.run.jobs import Job

    slow = Job("torch", load_case("xor"), "float64")  # 10,000 epochs: seconds
    [result] = ray_pool.run_all([slow], 2, 0.5)
    assert result.status == "error" and result.message.startswith("timed out after 0.5 s")
