"""The Ray executor: one local Ray instance for the module; a small `compare` and a small fuzz
campaign through it give the bits of the same runs on local workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="ray is optional: pip install 'backprop-parity[ray]'")

from cases import load_case
from harness.cli import main
from harness.fuzz.campaign import Campaign, Settings
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


def _results(path: Path) -> list[dict]:
    """parity.json's results, less what differs between any two runs (times, the process)."""
    results = json.loads(path.read_text())["results"]
    for result in results:
        result.pop("meta")
    return results


def test_compare_on_ray_gives_the_local_parity_results(ray_pool, tmp_path):
    args = ["compare", "--case", "regression", "logic-gates", "--engine", "torch", "--quiet",
            "--out"]
    assert main([*args, str(tmp_path / "local")]) == 0
    # `--ray local` with a Ray already running in this process uses it (and leaves it running)
    assert main([*args, str(tmp_path / "ray"), "--ray", "local"]) == 0
    local, on_ray = (_results(tmp_path / name / "parity.json") for name in ("local", "ray"))
    assert len(local) == 8 and on_ray == local


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
