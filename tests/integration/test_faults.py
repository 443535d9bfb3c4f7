"""Nothing lost, nothing paid twice: real worker processes, Redis, PostgreSQL and HTTP to the
simulator, with workers killed, Redis emptied, and the API failing in every way it can."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from fleet import MODELS, RunWatcher, evalfleet, fleet_env, logs, run_args

from evalfleet.embedded import EmbeddedRedis
from evalfleet.fleet import WorkerFleet, free_port
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"
STORIES = 6  # the first 6 stories of the sample: 89 questions, 12 in story "0"
QUESTIONS = 89
FIRST_STORY_QUESTIONS = 12
FAST_RECOVERY = {
    "EVALFLEET_SWEEP_INTERVAL_S": "2",
    "EVALFLEET_LEASE_S": "6",
    "EVALFLEET_API_TIMEOUT_S": "2",
}


@pytest.fixture
def dataset(shared_file: Callable[[str], Path]) -> Path:
    path = shared_file(SAMPLE)
    stories = load_dataset_spec(str(path), limit=STORIES).stories
    assert sum(len(s.questions) for s in stories) == QUESTIONS
    assert len(stories[0].questions) == FIRST_STORY_QUESTIONS and stories[0].key == "0"
    return path


@pytest.fixture
def env_for(
    postgres_url: str, redis_url: str, queue_name: str
) -> Callable[[SimServer], dict[str, str]]:
    def make(sim: SimServer, **extra: str) -> dict[str, str]:
        return fleet_env(
            postgres_url, redis_url, queue_name, sim.base_url, **{**FAST_RECOVERY, **extra}
        )

    return make


def start_run(dataset: Path, env: dict[str, str], cwd: Path, *extra: str) -> int:
    upgraded = evalfleet(["db", "upgrade"], env, cwd)
    assert upgraded.returncode == 0, upgraded.stderr
    queued = evalfleet(run_args(dataset, "--limit", str(STORIES), *extra), env, cwd)
    assert queued.returncode == 0, queued.stderr
    return int(queued.stdout.split()[1].rstrip(":"))


def assert_every_question_answered_once(watcher: RunWatcher, run_id: int) -> None:
    run = watcher.run(run_id)
    assert run.state == "done" and run.aggregations == 1
    assert watcher.answers(run_id) == 2 * QUESTIONS  # unique keys: one row per (model, turn)
    assert {item.state for item in watcher.items(run_id)} == {"done"}


def test_a_worker_killed_mid_task_loses_nothing_and_stored_turns_are_not_asked_again(
    dataset: Path, env_for: Callable[..., dict[str, str]], watcher: RunWatcher, tmp_path: Path
) -> None:
    # Given two workers answering at 60 ms a request
    with SimServer(SimConfig(latency_ms_mean=60)) as sim:
        env = env_for(sim)
        with WorkerFleet(2, 4, env, tmp_path / "logs") as workers:
            run_id = start_run(dataset, env, tmp_path)
            watcher.wait_for_answers(run_id, 30)
            # When one worker is killed with SIGKILL in the middle of its tasks
            workers.kill(workers.workers[0])
            state = watcher.wait_for(run_id)
        requests = sim.stats()["requests_total"]
    # Then every question is answered exactly once, and only the killed worker's unstored
    # answers were paid for twice: the requests it had in flight (at most its concurrency,
    # 4) and the answers awaiting its group commit (those of the 50 ms window and of the
    # commit under way: at most 4 each at 60 ms a request); its items' stored turns were
    # not asked again (about 15 a story, 4 stories at a time)
    assert state == "done", logs(tmp_path)
    assert_every_question_answered_once(watcher, run_id)
    assert 2 * QUESTIONS <= requests <= 2 * QUESTIONS + 3 * 4


def test_a_run_survives_redis_restarted_empty(
    dataset: Path, postgres_url: str, queue_name: str, watcher: RunWatcher, tmp_path: Path
) -> None:
    # Given a run on its own Redis (emptying the machine's would disturb other work)
    with EmbeddedRedis() as broker, SimServer(SimConfig(latency_ms_mean=60)) as sim:
        # The sweep is off: reconcile by hand here
        recovery = {**FAST_RECOVERY, "EVALFLEET_SWEEP_INTERVAL_S": "0"}
        env = fleet_env(postgres_url, broker.url, queue_name, sim.base_url, **recovery)
        run_id = start_run(dataset, env, tmp_path)
        with WorkerFleet(1, 4, env, tmp_path / "logs"):
            watcher.wait_for_answers(run_id, 20)
            # When every queued message is lost
            redis.Redis.from_url(broker.url).flushall()
            # Then `evalfleet reconcile` re-sends what no worker holds, and the run completes
            reconciled = evalfleet(["reconcile", str(run_id)], env, tmp_path)
            assert reconciled.returncode == 0, reconciled.stderr
            assert "re-sent" in reconciled.stdout
            state = watcher.wait_for(run_id)
    assert state == "done", logs(tmp_path)
    assert_every_question_answered_once(watcher, run_id)


def test_api_faults_are_retried_and_the_scores_equal_a_fault_free_run(
    dataset: Path, env_for: Callable[..., dict[str, str]], watcher: RunWatcher, tmp_path: Path
) -> None:
    # Given an API that answers 429, 503, 500, times out, resets connections, sends a body
    # that is not JSON or has no choices, and cuts bodies short, a quarter of the time in all
    faults = SimConfig(
        latency_ms_mean=5, fault_429=0.03, fault_503=0.05, fault_500=0.05, fault_timeout=0.01,
        fault_malformed=0.02, fault_no_choices=0.02, fault_reset=0.02, fault_cut=0.02,
        timeout_s=3, seed=7,
    )  # fmt: skip
    with SimServer(faults) as sim:
        env = env_for(sim, EVALFLEET_REQUEST_ATTEMPTS="6", EVALFLEET_API_TIMEOUT_S="1")
        with WorkerFleet(2, 8, env, tmp_path / "logs"):
            run_id = start_run(dataset, env, tmp_path, "--no-cache")
            state = watcher.wait_for(run_id, timeout=240)
        injected = sim.stats()["faults"]
    # Then every fault kind happened, and still every question was answered once
    assert state == "done", logs(tmp_path)
    kinds = {"429", "503", "500", "malformed", "no_choices", "reset", "cut"}
    assert set(injected) >= kinds, injected
    assert_every_question_answered_once(watcher, run_id)
    # And the scores are those of a run on a fault-free simulator (it is deterministic)
    with SimServer(SimConfig()) as clean_sim:
        env = env_for(clean_sim)
        with WorkerFleet(1, 4, env, tmp_path / "logs-clean"):
            clean_id = start_run(dataset, env, tmp_path, "--no-cache")
            assert watcher.wait_for(clean_id) == "done"
    faulty = evalfleet(["report", str(run_id), "--format", "json"], env, tmp_path).stdout
    clean = evalfleet(["report", str(clean_id), "--format", "json"], env, tmp_path).stdout
    for label in MODELS:
        got, want = json.loads(faulty)["models"][label], json.loads(clean)["models"][label]
        assert (got["em"], got["f1"]) == (want["em"], want["f1"])


def test_an_item_that_exhausts_its_retries_fails_with_its_error_and_retry_reruns_only_it(
    dataset: Path, env_for: Callable[..., dict[str, str]], watcher: RunWatcher, tmp_path: Path
) -> None:
    # Given an API that answers 503 to everything
    port = free_port()
    with SimServer(SimConfig(port=port, fault_503=1.0)) as sim:
        env = env_for(
            sim, EVALFLEET_REQUEST_ATTEMPTS="2", EVALFLEET_TASK_MAX_RETRIES="1",
        )  # fmt: skip
        with WorkerFleet(1, 16, env, tmp_path / "logs"):
            run_id = start_run(dataset, env, tmp_path)
            # When every retry is spent
            state = watcher.wait_for(run_id, timeout=120)
    # Then the run ends with every item failed, each with the 503 as its reason
    assert state == "done"
    items = watcher.items(run_id)
    assert {i.state for i in items} == {"failed"}
    assert all("503" in (i.last_error or "") for i in items), [i.last_error for i in items]
    # And once the API recovers, `evalfleet retry` completes the run
    with SimServer(SimConfig(port=port)) as sim:
        with WorkerFleet(1, 16, env, tmp_path / "logs-retry"):
            retried = evalfleet(["retry", str(run_id)], env, tmp_path)
            assert retried.returncode == 0, retried.stderr
            assert watcher.wait_for(run_id) == "done"
        assert sim.stats()["requests_total"] == 2 * QUESTIONS
    assert watcher.answers(run_id) == 2 * QUESTIONS
    assert watcher.run(run_id).aggregations == 2  # once failed, once after the retry


def test_a_poison_message_is_stopped_after_a_bounded_number_of_deliveries(
    dataset: Path, env_for: Callable[..., dict[str, str]], watcher: RunWatcher, tmp_path: Path
) -> None:
    # Given a story whose task kills its worker process every time (prefork children die,
    # task_reject_on_worker_lost hands the message back)
    with SimServer(SimConfig()) as sim:
        env = env_for(
            sim, EVALFLEET_FAULT_KILL_ON_STORY="0", EVALFLEET_MAX_ATTEMPTS="3",
            EVALFLEET_LEASE_S="1",
        )  # fmt: skip
        with WorkerFleet(1, 2, env, tmp_path, name="worker", pool="prefork"):
            run_id = start_run(dataset, env, tmp_path)
            state = watcher.wait_for(run_id, timeout=120)
    # Then both items of that story failed with the reason, and the rest were answered
    assert state == "done", logs(tmp_path)
    failed = [i for i in watcher.items(run_id) if i.state == "failed"]
    assert len(failed) == 2
    assert all("gave up after 3 deliveries" in (i.last_error or "") for i in failed)
    assert watcher.answers(run_id) == 2 * (QUESTIONS - FIRST_STORY_QUESTIONS)


def test_a_bad_key_stops_the_run_early_with_one_clear_message(
    dataset: Path, env_for: Callable[..., dict[str, str]], watcher: RunWatcher, tmp_path: Path
) -> None:
    # Given an API that wants another key
    with SimServer(SimConfig(required_api_key="the-right-key")) as sim:
        env = env_for(sim, TOGETHER_API_KEY="a-wrong-key-0000")
        with WorkerFleet(1, 2, env, tmp_path / "logs"):
            upgraded = evalfleet(["db", "upgrade"], env, tmp_path)
            assert upgraded.returncode == 0
            # When the user runs and waits
            # (past the preflight, which would refuse it before a run exists: the workers'
            # own stop is what is tested here; tests/unit/cli/test_preflight.py the other)
            args = run_args(dataset, "--limit", str(STORIES), "--wait", "--no-preflight")
            result = evalfleet(args, env, tmp_path)
        requests = sim.stats()["requests_total"]
    # Then it stops with one line naming the refusal, without a request per question
    assert result.returncode != 0
    assert "the API refused the key" in result.stderr + result.stdout
    assert requests < 2 * QUESTIONS / 3
    assert "a-wrong-key-0000" not in result.stderr + result.stdout


def test_an_unknown_model_fails_fast_and_the_other_model_is_unaffected(
    dataset: Path, env_for: Callable[..., dict[str, str]], watcher: RunWatcher, tmp_path: Path
) -> None:
    with SimServer(SimConfig()) as sim:
        env = env_for(sim)
        with WorkerFleet(1, 4, env, tmp_path / "logs"):
            # Given a fine-tuned model name the API does not know
            models = {"base": MODELS["base"], "finetuned": "me/no-such-model"}
            assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
            # When the user runs and waits (past the preflight, which would refuse the model)
            queued = evalfleet(
                run_args(dataset, "--limit", str(STORIES), "--wait", "--json", "--no-preflight",
                         models=models),
                env, tmp_path,
            )  # fmt: skip
    # Then the run completes: the base model answered everything, the other failed fast
    assert queued.returncode == 0, queued.stderr
    summary = json.loads(queued.stdout)
    assert summary["models"]["base"]["answered"] == QUESTIONS, summary["failures"]
    assert summary["models"]["base"]["f1"] is not None
    assert summary["models"]["finetuned"]["failed"] == QUESTIONS
    assert "model not found: me/no-such-model" in summary["failures"][0]["error"]


def test_a_worker_stopped_with_sigterm_finishes_or_hands_back_its_tasks(
    dataset: Path, env_for: Callable[..., dict[str, str]], watcher: RunWatcher, tmp_path: Path
) -> None:
    with SimServer(SimConfig(latency_ms_mean=60)) as sim:
        env = env_for(sim)
        with WorkerFleet(2, 4, env, tmp_path / "logs") as workers:
            run_id = start_run(dataset, env, tmp_path)
            watcher.wait_for_answers(run_id, 30)
            assert workers.workers[0].stop(timeout=60) == 0  # SIGTERM: a warm shutdown
            state = watcher.wait_for(run_id)
        requests = sim.stats()["requests_total"]
    assert state == "done", logs(tmp_path)
    assert_every_question_answered_once(watcher, run_id)
    assert requests == 2 * QUESTIONS  # a warm shutdown loses no paid request


def test_a_story_longer_than_the_context_fails_its_questions_with_the_reason_unscored(
    dataset: Path, env_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # Given a model whose context holds the shorter stories of the sample but not the longer
    with SimServer(SimConfig(context_length=420)) as sim:
        env = env_for(sim)
        with WorkerFleet(1, 8, env, tmp_path / "logs"):
            assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
            # When the user runs and waits
            result = evalfleet(
                run_args(dataset, "--limit", str(STORIES), "--wait", "--json"), env, tmp_path
            )
        requests = sim.stats()["requests_total"]
    # Then the run completes; the questions of the long stories failed with the API's 400,
    # each asked once (a 400 is not retried) and left out of the scores, not scored as wrong
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    base = summary["models"]["base"]
    assert 0 < base["failed"] < QUESTIONS and base["answered"] + base["failed"] == QUESTIONS
    assert base["scored"] == base["answered"] == summary["models"]["finetuned"]["answered"]
    assert "BadRequestError (400)" in summary["failures"][0]["error"]
    assert requests == 2 * QUESTIONS
