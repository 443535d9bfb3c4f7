"""`evalfleet demo` needs nothing but Python: run where no ../shared data and no hub are at
hand, it reads the CoQA demo set inside the package and prints the verdict."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

VERDICT = re.compile(
    r"^(finetuned beats base|finetuned is worse than base"
    r"|no detectable difference between finetuned and base): F1 ",
    re.MULTILINE,
)


def test_the_demo_runs_on_the_packaged_set_and_prints_a_verdict(tmp_path: Path) -> None:
    # Given a folder with no ../shared beside it, no settings and no configured services
    assert not (tmp_path.parent / "shared").exists()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("EVALFLEET_", "TOGETHER_", "HF_"))
    }
    env.update(HOME=str(tmp_path), COLUMNS="200", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    # When the demo runs there with no --dataset
    result = subprocess.run(
        [str(Path(sys.executable).with_name("evalfleet")), "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    # Then it read the packaged set, ran on the embedded default and printed a verdict
    assert result.returncode == 0, result.stderr[-3000:]
    assert "coqa-demo.jsonl (8 stories)" in result.stdout
    assert "8 stories, 123 questions, 2 models" in result.stdout
    match = VERDICT.search(result.stdout)
    assert match is not None, result.stdout[-3000:]
    # The simulator's fine-tuned reader answers short spans: it beats the verbose base reader
    assert match.group(1) == "finetuned beats base"
    assert (tmp_path / "evalfleet.db").is_file()
    # And the simulator's judge graded every answer once
    assert "2 models, graded by evalfleet/sim-judge" in result.stdout
    with sqlite3.connect(tmp_path / "evalfleet.db") as db:
        answers = db.execute("SELECT count(*) FROM answers").fetchone()[0]
        graded = db.execute(
            "SELECT count(DISTINCT model_label || '/' || story_id || '/' || turn), count(*) "
            "FROM judgements WHERE verdict IS NOT NULL"
        ).fetchone()
    assert answers == 2 * 123 and tuple(graded) == (answers, answers)
    # And its report shows the judge metric: who graded, the paired judge table, the audit
    assert "Judge: evalfleet/sim-judge" in result.stdout
    assert "finetuned against base by the judge" in result.stdout
    assert "The judge against EM and F1" in result.stdout
