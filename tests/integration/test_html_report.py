"""The HTML report in a real headless Chromium: the verdict and the plots are on the page, and
a question holding markup is shown as text, never run. The run is built without the cluster:
the producer writes the run (the 20-story CoQA sample), the simulator's reader answers, the
real aggregator aggregates."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from unit.aggregator.simulated_run import database, finished_run, simulated_answers

from evalfleet.cli.main import cli
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.simulator.config import DEMO_MODELS

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = "coqa/coqa-validation-first20.jsonl"
MODELS = DEMO_MODELS
# Would mark the page if it ran; it must show as text instead.
HOSTILE = '<script>document.documentElement.setAttribute("data-owned", "yes")</script>Who?'


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI=true): apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing")
    return CHROMIUM


def headless(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(chromium), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-quic", "--no-first-run",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


@pytest.fixture
def report_file(
    shared_file: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """`evalfleet report --format html` of base vs fine-tune on the CoQA sample, whose first
    question was replaced by a script tag that the fine-tune answers right and base wrong."""
    dataset = load_dataset_spec(str(shared_file(SAMPLE)))
    first = dataset.stories[0]
    question = dataclasses.replace(first.questions[0], text=HOSTILE)
    story = dataclasses.replace(first, questions=(question, *first.questions[1:]))
    dataset = dataclasses.replace(dataset, stories=(story, *dataset.stories[1:]))
    answers = simulated_answers(dataset, MODELS)
    answers[("base", story.key, 1)] = "I cannot tell."
    answers[("finetuned", story.key, 1)] = question.references[0]
    url, sessions = database(tmp_path)
    run_id = finished_run(sessions, dataset, MODELS, answers)
    monkeypatch.setenv("EVALFLEET_DATABASE_URL", url)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(run_id), "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_chromium_shows_the_verdict_the_plots_and_markup_as_text(
    chromium: Path, report_file: Path, tmp_path: Path
) -> None:
    # When Chromium loads the report and renders it
    dumped = headless(chromium, tmp_path / "profile", "--dump-dom", report_file.as_uri())
    shot = tmp_path / "report.png"
    headless(
        chromium, tmp_path / "profile-shot", "--hide-scrollbars", "--window-size=1100,2400",
        f"--screenshot={shot}", report_file.as_uri(),
    )  # fmt: skip
    # Then the rendered page holds the verdict with its numbers
    dom = dumped.stdout
    assert dumped.returncode == 0 and "</html>" in dom, dumped.stderr[-2000:]
    verdict = re.search(
        r'<section class="verdict (\w+)"[^>]*>\s*<div class="headline">([^<]+)', dom
    )
    assert verdict is not None and verdict.groups() == ("better", "finetuned beats base")
    assert "95% CI" in dom and "smallest detectable difference" in dom
    # And every plot, as inline SVG with its bars and labels
    for plot in ("scores", "difference-1", "f1-distribution", "answer-length"):
        figure = re.search(rf'<figure id="plot-{plot}">\s*<svg[^>]*>(.*?)</svg>', dom, re.S)
        assert figure is not None, plot
        assert "<path" in figure.group(1) and "<text" in figure.group(1)
    # And the script in the question did not run: it is on the page as text
    assert 'data-owned="yes"' not in dom
    assert "&lt;script&gt;document.documentElement.setAttribute(" in dom
    # And a screenshot was drawn (look at it: `pytest --basetemp=out`, then out/.../report.png)
    assert shot.is_file() and shot.stat().st_size > 50_000
