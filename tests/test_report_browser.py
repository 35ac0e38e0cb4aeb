"""parity.html in a real browser: a report from a real compare (two shipped cases on the reference,
the seed notebook and torch, both dtypes) opened in headless Chromium. The page never scrolls
sideways (at 1400 and at 1000 px), every image decodes, and the top of the page is
screenshotted. Also: the deviation plot's data agrees with the judge.

Chromium is driven from its command line, no Python dependency: `--dump-dom` of a copy of the
page whose inline script writes its measurements into the DOM once loaded, and `--screenshot`.
Set BACKPROP_PARITY_SCREENSHOTS to a folder to keep the screenshot there as well.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cases.loader import load_case
from harness.compare import run_compare
from harness.judge.expectations import load_expectations
from harness.judge.matrix import CompareRun
from harness.report import write_report
from harness.report.deviations import case_deviations
from tests.conftest import _session_pool

CASES = ("regression", "classification")
ENGINES = ("reference", "seed-notebook", "torch")
DTYPES = ("float64", "float32")
SCREENSHOTS = "BACKPROP_PARITY_SCREENSHOTS"
INSTALL = "apt-get install -y --no-install-recommends chromium"

# After the load event (every data: image decoded or failed): how wide the page is, what each
# image decoded to, and the first few elements that stick out of the window outside a box that
# scrolls on its own (the culprits, should the page be too wide).
MEASURE = """<script>
window.addEventListener("load", () => {
  const width = window.innerWidth;
  const out = {
    scrollWidth: document.documentElement.scrollWidth, innerWidth: width,
    images: [...document.images].map(i => [i.alt, i.complete, i.naturalWidth]),
    wide: [...document.querySelectorAll("body *")]
      .filter(e => e.getBoundingClientRect().right > width && !e.closest(".scroll, pre"))
      .slice(0, 5).map(e => e.tagName + " " + (e.textContent || "").slice(0, 80)),
  };
  const pre = document.createElement("pre");
  pre.id = "bpp-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(f"no chromium on this machine: {INSTALL}")
    return found


def _browse(page: Path, width: int, height: int, *args: str, profile: Path) -> str:
    """Chromium headless on `page` in a `width` x `height` window; its stdout."""
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={width},{height}", *args,
               page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def run() -> CompareRun:
    return run_compare([load_case(name) for name in CASES], list(ENGINES), list(DTYPES),
                       expectations=load_expectations(), pool=_session_pool())


@pytest.fixture(scope="module")
def written(run: CompareRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_report(run, tmp_path_factory.mktemp("browser") / "report")


@pytest.mark.parametrize("width", [1400, 1000])
def test_page_never_scrolls_sideways_and_every_image_loads(
        written: dict[str, Path], tmp_path: Path, width: int) -> None:
    page = written["html"].with_name(f"measure-{width}.html")
    page.write_text(written["html"].read_text().replace("</body>", MEASURE + "</body>"))
    dom = _browse(page, width, 1000, "--dump-dom", profile=tmp_path / "profile")
    found = re.search(r'<pre id="bpp-measure">(.*?)</pre>', dom, re.S)
    assert found, "the page's measuring script did not run"
    measured = json.loads(html.unescape(found.group(1)))
    assert measured["innerWidth"] == width
    assert measured["scrollWidth"] <= measured["innerWidth"], measured["wide"]
    images = measured["images"]
    assert len(images) == 2 * len(CASES)  # a loss plot and a deviation plot per case
    for alt, complete, natural_width in images:
        assert complete and natural_width > 0, alt


def test_screenshot_of_the_top(written: dict[str, Path], tmp_path: Path) -> None:
    shot = tmp_path / "parity-top.png"
    _browse(written["html"], 1400, 1000, f"--screenshot={shot}", profile=tmp_path / "profile")
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1400, 1000)
    if os.environ.get(SCREENSHOTS):
        folder = Path(os.environ[SCREENSHOTS])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, folder / shot.name)
        for case in CASES:
            shutil.copyfile(written[f"deviation:{case}"], folder / f"{case}.deviation.png")


def test_outcome_grid_comes_first_and_links_inside_the_page(written: dict[str, Path]) -> None:
    page = written["html"].read_text()
    grid = page[page.index('<table class="grid">'):]
    grid = grid[:grid.index("</table>")]
    assert page.index('<table class="grid">') < page.index("<h2>Summary</h2>")
    # One cell per case x engine x dtype, each coloured, each link to an id of the page.
    assert grid.count("<td class=") == len(CASES) * len(ENGINES) * len(DTYPES)
    links = re.findall(r'href="#([^"]+)"', grid)
    ids = set(re.findall(r' id="([^"]+)"', page))
    assert len(links) == len(CASES) * (1 + len(ENGINES) * len(DTYPES))
    assert set(links) <= ids, set(links) - ids
    assert '<td class="good"><a href="#cmp-regression-seed-notebook-float64">' in grid
    # Every table scrolls in a box of its own.
    assert page.count("<table") == page.count('<div class="scroll">\n<table')
    text = written["md"].read_text()
    assert text.index("## Outcomes") < text.index("## Summary")
    assert "[✓ expected fail " in text and "](#cmp-regression-seed-notebook-float64)" in text


def test_deviation_data_agrees_with_the_judge(run: CompareRun) -> None:
    """The plot's |engine - reference| and allowed band give each comparison's own `used`."""
    for case in run.cases:
        data = case_deviations(run, case)
        assert not data.skipped
        assert {(d.engine, d.dtype) for d in data.losses} == {
            (e, d) for e in ENGINES[1:] for d in DTYPES}
        comparisons = {(e.engine, e.dtype): e.comparison for e in run.for_case(case.name)}
        for losses, params in zip(data.losses, data.params, strict=True):
            comparison = comparisons[(losses.engine, losses.dtype)]
            assert params.values.size == case.parameter_count
            assert np.isclose(max(losses.used, params.used), comparison.used, rtol=1e-9)
