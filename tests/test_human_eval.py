"""HYPE human evaluation: protocol, scores, the Flask API (test client), storage, restart, the CLI, load."""

from __future__ import annotations

import csv
import math
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import human_eval
from hype.app import create_app
from hype.images import scan_folder
from hype.protocol import Protocol, modal_exposure, next_exposure, tutorial_passed
from hype.scores import bootstrap_mean, hype_infinity, two_way_bootstrap
from hype.server import running, serve_process
from hype.simulate import random_policy, run_concurrently
from hype.study import Study


def write_images(folder: Path, n: int, value: int, prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    for k in range(n):
        pixels = np.clip(value + rng.integers(-20, 20, size=(8, 8)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{prefix}{k:03d}.png")
    return folder


@pytest.fixture
def folders(tmp_path):
    return {"real": write_images(tmp_path / "real", 12, 60), "fake": write_images(tmp_path / "fake", 12, 200)}


def open_study(tmp_path, folders, **protocol) -> Study:
    settings = dict(mode="infinity", block_size=4, blocks=1, tutorial_size=2)
    settings.update(protocol)
    return Study.open(tmp_path / "run" / "hype.sqlite", folders["real"], folders["fake"], Protocol(**settings))


def rows(study: Study, sql: str, *args) -> list[tuple]:
    with study.store.connection() as conn:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]


def truths(study: Study, token: str) -> list[str]:
    return [t for (t,) in rows(study, "SELECT truth FROM trials t JOIN sessions s ON s.id = t.session_id "
                                      "WHERE s.token = ? ORDER BY idx", token)]


def play(client, token: str, choose) -> list[dict]:
    """Answer every trial of a session with ``choose(state)``; returns the states seen."""
    seen = []
    state = client.get(f"/api/sessions/{token}").get_json()
    while state["phase"] != "done":
        seen.append(state)
        reply = client.post(f"/api/sessions/{token}/answers",
                            json={"trial": state["trial"], "answer": choose(state), "response_ms": 321.5})
        assert reply.status_code == 200, reply.get_json()
        state = reply.get_json()["next"]
    return seen


def new_session(client, worker=None) -> str:
    reply = client.post("/api/sessions", json={"worker": worker} if worker else {})
    assert reply.status_code == 201
    return reply.get_json()["token"]


FLIP = {"real": "fake", "fake": "real"}


# -- protocol ---------------------------------------------------------------------------------------


def test_staircase_trajectory_by_hand():
    p = Protocol(mode="time", step_up_ms=30, step_down_ms=10)
    answers = [True, True, False, True, False, False]
    assert [next_exposure(answers[:k], p) for k in range(len(answers) + 1)] == [500, 490, 480, 510, 500, 530, 560]
    # Clamped at the paper's bounds [100, 1000] ms.
    assert next_exposure([True] * 45, p) == 100
    assert next_exposure([False] * 20, p) == 1000
    assert next_exposure([True] * 45 + [False], p) == 130


def test_modal_exposure_and_tutorial_check():
    assert modal_exposure([500, 490, 500, 480]) == 500
    assert modal_exposure([500, 530, 520, 510, 500, 530]) == 515  # a tie: the mean of the tied values
    # 65% of the reals AND 65% of the fakes: 4 of 5 passes, 3 of 5 (60%) fails.
    t = ["real"] * 5 + ["fake"] * 5
    assert tutorial_passed(t, ["real"] * 4 + ["fake"] + ["fake"] * 4 + ["real"], 0.65)
    assert not tutorial_passed(t, ["real"] * 3 + ["fake"] * 2 + ["fake"] * 5, 0.65)
    assert not tutorial_passed(t, ["real"] * 10, 0.65)  # always "real": 100% on reals, 0% on fakes


def test_plan_is_balanced_without_repeats(tmp_path, folders):
    study = open_study(tmp_path, folders, block_size=4, blocks=2, tutorial_size=4)
    import random

    plan = study.plan(random.Random(0))
    assert [t.phase for t in plan] == ["tutorial"] * 4 + ["evaluation"] * 8
    for block in (0, 1):
        kinds = [t.truth for t in plan if t.phase == "evaluation" and t.block == block]
        assert sorted(kinds) == ["fake", "fake", "real", "real"]
    files = [study.images[t.image_id].file for t in plan]
    assert len(set(files)) == len(files)  # the tutorial shares the folders, yet no image comes twice


def test_protocol_rejects_bad_settings():
    with pytest.raises(ValueError, match="--block-size"):
        Protocol(block_size=5)
    with pytest.raises(ValueError, match="--mode"):
        Protocol(mode="fast")
    with pytest.raises(ValueError, match="--qualify"):
        Protocol(qualify=1.5)


# -- scores -----------------------------------------------------------------------------------------


def test_hype_infinity_by_hand():
    # Evaluator 0 is always right; evaluator 1 says "fake" to everything: 2 errors in 8 judgments.
    t = ["real", "real", "fake", "fake"] * 2
    a = ["real", "real", "fake", "fake"] + ["fake"] * 4
    s = hype_infinity(t, a, [0] * 4 + [1] * 4, [0, 1, 2, 3] * 2, iterations=2000)
    assert s["score"] == 0.25 and s["fake_error"] == 0.0 and s["real_error"] == 0.5
    assert s["ci_low"] <= 0.25 <= s["ci_high"]
    # Everybody wrong on everything: every resample is 100%.
    s = hype_infinity(["real", "fake"] * 3, ["fake", "real"] * 3, [0, 0, 1, 1, 2, 2], [0, 1] * 3, iterations=500)
    assert (s["score"], s["ci_low"], s["ci_high"]) == (1.0, 1.0, 1.0)


def test_bootstrap_spread_matches_the_analytic_standard_error():
    rng = np.random.default_rng(0)
    x = rng.normal(400.0, 80.0, size=40)
    mean, low, high = bootstrap_mean(x, iterations=20_000, seed=1)
    assert mean == pytest.approx(x.mean())
    se = x.std(ddof=0) / math.sqrt(len(x))  # the bootstrap's SE is the plug-in SE
    assert (high - low) / (2 * 1.959964) == pytest.approx(se, rel=0.06)
    # One evaluator: the two-way bootstrap is an image bootstrap of a Bernoulli mean.
    errors = (rng.random(200) < 0.3).astype(float)
    samples = two_way_bootstrap(errors, np.zeros(200, int), np.arange(200), iterations=20_000, seed=2)
    p = errors.mean()
    assert samples.std() == pytest.approx(math.sqrt(p * (1 - p) / 200), rel=0.05)
    assert samples.mean() == pytest.approx(p, abs=0.002)


# -- the API ----------------------------------------------------------------------------------------


def test_infinity_session_always_real_scores_half(tmp_path, folders):
    study = open_study(tmp_path, folders, block_size=6)
    client = create_app(study).test_client()
    for worker in ("w1", "w2"):
        token = new_session(client, worker)
        truth = truths(study, token)
        states = play(client, token, lambda s, truth=truth: truth[s["trial"]] if s["phase"] == "tutorial" else "real")
        assert [s["phase"] for s in states] == ["tutorial"] * 2 + ["evaluation"] * 6
        assert all(s["exposure_ms"] is None for s in states)
    summary = client.get(f"/api/results?token={study.results_token}").get_json()
    score = summary["score"]
    assert score["score"] == 0.5 and score["fake_error"] == 1.0 and score["real_error"] == 0.0
    assert score["ci_low"] < 0.5 < score["ci_high"]
    assert summary["counts"]["evaluators_included"] == 2 and summary["counts"]["judgments"] == 16
    stored = rows(study, "SELECT phase, answer, response_ms, exposure_ms FROM judgments WHERE phase = 'evaluation'")
    assert len(stored) == 12 and {r[1] for r in stored} == {"real"} and {r[2] for r in stored} == {321.5}
    assert {r[3] for r in stored} == {None}
    # Every fake was judged real by both evaluators: the results page lists them.
    fakes = summary["deceptive_fakes"]
    assert sum(f["judgments"] for f in fakes) == 6 and {f["rate"] for f in fakes} == {1.0}


def test_time_session_staircase_and_score_by_hand(tmp_path, folders, capsys):
    study = open_study(tmp_path, folders, mode="time", block_size=6, feedback=True)
    client = create_app(study).test_client()
    scripts = {"a": [False, True, True, True, False, True],   # 500 530 520 510 500 530: modes 500, 530 -> 515
               "b": [True, True, True, False, True, True]}    # 500 490 480 470 500 490: modes 500, 490 -> 495
    for worker, script in scripts.items():
        token = new_session(client, worker)
        truth = truths(study, token)
        def choose(s, truth=truth, script=script):
            right = truth[s["trial"]]
            return right if s["phase"] == "tutorial" or script[s["position"] - 1] else FLIP[right]

        states = play(client, token, choose)
        exposures = [s["exposure_ms"] for s in states if s["phase"] == "evaluation"]
        ok = script
        assert exposures == [next_exposure(ok[:k], study.protocol) for k in range(6)]
        stored = [e for (e,) in rows(study, "SELECT exposure_ms FROM judgments j JOIN sessions s ON s.id = j.session_id "
                                            "WHERE s.token = ? AND phase = 'evaluation' ORDER BY idx", token)]
        assert stored == exposures
    assert rows(study, "SELECT exposure_ms FROM judgments WHERE phase = 'evaluation' ORDER BY session_id, idx")[:6] == \
        [(500,), (530,), (520,), (510,), (500,), (530,)]
    summary = client.get(f"/api/results?token={study.results_token}").get_json()
    assert sorted(summary["thresholds"].values()) == [495.0, 515.0]
    assert summary["score"]["score"] == 505.0
    assert 495.0 <= summary["score"]["ci_low"] <= 505.0 <= summary["score"]["ci_high"] <= 515.0
    page = client.get(f"/results?token={study.results_token}").get_data(as_text=True)
    assert '<td id="score">505.0 ms</td>' in page and "HYPE<sub>time</sub>" in page
    human_eval.main(["report", "--db", str(study.store.path), "--iterations", "200"])
    assert "HYPE_time: 505.0 ms" in capsys.readouterr().out


def test_feedback_in_tutorial_only_for_infinity(tmp_path, folders):
    study = open_study(tmp_path, folders)
    client = create_app(study).test_client()
    token = new_session(client)
    replies = []
    state = client.get(f"/api/sessions/{token}").get_json()
    while state["phase"] != "done":
        reply = client.post(f"/api/sessions/{token}/answers",
                            json={"trial": state["trial"], "answer": "fake", "response_ms": 10}).get_json()
        replies.append((state["phase"], "correct" in reply))
        state = reply["next"]
    assert replies == [("tutorial", True)] * 2 + [("evaluation", False)] * 4


def test_failed_tutorial_is_excluded_and_counted(tmp_path, folders):
    study = open_study(tmp_path, folders, tutorial_size=4)
    client = create_app(study).test_client()
    good, bad = new_session(client, "good"), new_session(client, "bad")
    truth_good, truth_bad = truths(study, good), truths(study, bad)
    play(client, good, lambda s: truth_good[s["trial"]])            # perfect: 0% error
    play(client, bad, lambda s: "fake" if truth_bad[s["trial"]] == "real" else "real")  # always wrong
    summary = client.get(f"/api/results?token={study.results_token}").get_json()
    assert summary["counts"]["evaluators_excluded"] == 1 and summary["counts"]["evaluators_included"] == 1
    assert summary["score"]["score"] == 0.0  # the excluded evaluator's errors do not count
    page = client.get(f"/results?token={study.results_token}").get_data(as_text=True)
    assert '<td id="excluded">1</td>' in page and '<td id="score">0.0%</td>' in page


BAD_ANSWERS = [
    ("not json", "data"), ("[1, 2]", "data"), ({"answer": "real", "response_ms": 1}, "json"),
    ({"trial": "0", "answer": "real", "response_ms": 1}, "json"), ({"trial": True, "answer": "real", "response_ms": 1}, "json"),
    ({"trial": 0, "answer": "maybe", "response_ms": 1}, "json"), ({"trial": 0, "answer": "real", "response_ms": -5}, "json"),
    ({"trial": 0, "answer": "real", "response_ms": "fast"}, "json"), ({"trial": 0, "answer": "real"}, "json"),
    ({"trial": 0, "answer": "real", "response_ms": 1e12}, "json"), ({"trial": 0, "answer": "real", "response_ms": 1, "x": 1}, "json"),
    ({"trial": 0, "answer": "real", "response_ms": 1, "shown_ms": -1}, "json"),
]


def test_bad_requests_are_refused_and_store_nothing(tmp_path, folders):
    study = open_study(tmp_path, folders)
    client = create_app(study).test_client()
    token = new_session(client)
    url = f"/api/sessions/{token}/answers"
    ok = {"trial": 0, "answer": "real", "response_ms": 100}
    assert client.post(url, json=ok).status_code == 200
    before = rows(study, "SELECT * FROM judgments"), rows(study, "SELECT * FROM sessions")
    for body, kind in BAD_ANSWERS:
        body = {**body, "trial": 1} if isinstance(body, dict) and "trial" in body and body["trial"] == 0 else body
        kwargs = {"json": body} if kind == "json" else {"data": body, "content_type": "application/json"}
        reply = client.post(url, **kwargs)
        assert reply.status_code == 400, (body, reply.get_json())
        assert "detail" in reply.get_json()
    assert client.post(url, json=ok).status_code == 409                                  # replay of trial 0
    assert client.post(url, json={**ok, "trial": 2}).status_code == 409                  # skips trial 1
    assert client.post(url, data=b"{" + b" " * 5000 + b"}", content_type="application/json").status_code == 413
    assert client.post(f"/api/sessions/{'x' * 24}/answers", json={**ok, "trial": 1}).status_code == 404
    assert client.post("/api/sessions/../../etc/answers", json=ok).status_code == 404
    assert client.get(f"/api/sessions/{'y' * 24}").status_code == 404
    assert client.get(f"/s/{'y' * 24}").status_code == 404
    assert client.post("/api/sessions", json={"worker": "a b/../c"}).status_code == 400
    assert client.post("/api/sessions", json={"worker": "ok", "admin": True}).status_code == 400
    assert (rows(study, "SELECT * FROM judgments"), rows(study, "SELECT * FROM sessions")) == before
    # Images only by id: unknown ids, paths and traversal are 404.
    assert client.get("/images/" + "0" * 20).status_code == 404
    assert client.get("/images/../real/000.png").status_code == 404
    assert client.get("/images/real%2F000.png").status_code == 404
    assert client.get("/masks/7").status_code == 404
    # The results need the token.
    assert client.get("/results").status_code == 403
    assert client.get("/api/results?token=wrong").status_code == 403
    assert client.post(url, json={**ok, "trial": 1}).status_code == 200  # the session itself is unharmed


def test_images_are_served_by_opaque_id_from_the_folders_only(tmp_path, folders):
    outside = write_images(tmp_path / "secret", 1, 10) / "000.png"
    (folders["fake"] / "link.png").symlink_to(outside)
    assert all(not rel.startswith("link") for rel, _ in scan_folder(folders["fake"], "--fake"))
    study = open_study(tmp_path, folders)
    client = create_app(study).test_client()
    assert all(len(i) == 20 and "real" not in i and "fake" not in i for i in study.images)
    some = next(iter(study.images.values()))
    reply = client.get(f"/images/{some.id}")
    assert reply.status_code == 200 and reply.data == some.file.read_bytes()
    assert reply.headers["Content-Type"] == "image/png"
    assert "Content-Security-Policy" in reply.headers


def test_writes_only_the_database(tmp_path, folders):
    before = {p for p in tmp_path.rglob("*")}
    study = open_study(tmp_path, folders)
    client = create_app(study).test_client()
    play(client, new_session(client), lambda s: "real")
    client.get(f"/results?token={study.results_token}")
    new = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")} - {p.relative_to(tmp_path).as_posix() for p in before}
    assert new <= {"run", "run/hype.sqlite", "run/hype.sqlite-wal", "run/hype.sqlite-shm"}


def test_restart_resumes_sessions(tmp_path, folders):
    study = open_study(tmp_path, folders, mode="time", block_size=4)
    client = create_app(study).test_client()
    token = new_session(client)
    for _ in range(4):  # the tutorial, then two evaluation answers
        state = client.get(f"/api/sessions/{token}").get_json()
        assert client.post(f"/api/sessions/{token}/answers",
                           json={"trial": state["trial"], "answer": "real", "response_ms": 5}).status_code == 200
    before = client.get(f"/api/sessions/{token}").get_json()
    del client, study  # the server stops
    study = open_study(tmp_path, folders, mode="time", block_size=4)  # ... and starts again on the same database
    client = create_app(study).test_client()
    after = client.get(f"/api/sessions/{token}").get_json()
    assert after == before and after["trial"] == 4 and after["phase"] == "evaluation"
    assert client.get(f"/s/{token}").status_code == 200
    play(client, token, lambda s: "fake")
    assert [i for (i,) in rows(study, "SELECT idx FROM judgments ORDER BY idx")] == list(range(6))
    assert rows(study, "SELECT COUNT(finished_at) FROM sessions") == [(1,)]


def test_restart_with_other_options_or_missing_images_fails(tmp_path, folders):
    study = open_study(tmp_path, folders)
    play(create_app(study).test_client(), new_session(create_app(study).test_client()), lambda s: "real")
    with pytest.raises(ValueError, match="mode"):
        open_study(tmp_path, folders, mode="time")
    used = rows(study, "SELECT i.path FROM trials t JOIN images i ON i.id = t.image_id WHERE i.pool = 'fake'")[0][0]
    (folders["fake"] / used).unlink()
    with pytest.raises(ValueError, match=f"fake:{used}"):
        open_study(tmp_path, folders)


# -- the CLI ----------------------------------------------------------------------------------------


def test_report_prints_scores_and_writes_csv(tmp_path, folders, capsys):
    study = open_study(tmp_path, folders)
    client = create_app(study).test_client()
    for worker in ("a", "b"):
        token = new_session(client, worker)
        truth = truths(study, token)
        play(client, token, lambda s, truth=truth: truth[s["trial"]] if s["phase"] == "tutorial" else "real")
    out = tmp_path / "j.csv"
    human_eval.main(["report", "--db", str(study.store.path), "--csv", str(out), "--iterations", "200"])
    printed = capsys.readouterr().out
    assert "HYPE_inf: 50.0%" in printed and "evaluators scored: 2" in printed
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 12 and set(table[0]) == set(human_eval.CSV_FIELDS)
    assert {r["answer"] for r in table if r["phase"] == "evaluation"} == {"real"}
    assert all(r["correct"] == str(int(r["truth"] == r["answer"])) for r in table)
    # Default CSV path: judgments.csv beside the database.
    human_eval.main(["report", "--db", str(study.store.path), "--iterations", "100"])
    assert (study.store.path.parent / "judgments.csv").is_file()


@pytest.mark.parametrize("args, message", [
    (["--real", "missing"], "--real missing: not a folder"),
    (["--block-size", "40"], "has 12 images; a session needs 21 (1 block(s) of 40, half real, plus 1 for the tutorial)"),
    (["--block-size", "3"], "--block-size"),
])
def test_serve_bad_options_name_the_option(tmp_path, folders, capsys, args, message):
    base = ["serve", "--real", str(folders["real"]), "--fake", str(folders["fake"]), "--db", str(tmp_path / "x.sqlite"),
            "--tutorial-size", "2", "--port", "0"]
    with pytest.raises(SystemExit) as e:
        human_eval.main(base + args)
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.sqlite").exists()  # refused before anything is written


def test_serve_binds_to_loopback_by_default():
    args = human_eval.build_parser().parse_args(["serve", "--real", "r", "--fake", "f"])
    assert args.host == "127.0.0.1" and args.mode == "infinity" and args.db is None
    assert human_eval.protocol_from_args(args) == Protocol(block_size=100, blocks=1)
    args = human_eval.build_parser().parse_args(["serve", "--real", "r", "--fake", "f", "--mode", "time"])
    assert human_eval.protocol_from_args(args) == Protocol(mode="time", block_size=150, blocks=3, feedback=True)


def test_report_on_missing_db_names_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        human_eval.main(["report", "--db", str(tmp_path / "none.sqlite")])
    assert "--db" in capsys.readouterr().err


# -- load -------------------------------------------------------------------------------------------


def test_twenty_concurrent_evaluators_lose_and_duplicate_nothing(tmp_path, folders):
    study = open_study(tmp_path, folders, block_size=6)
    with running(create_app(study)) as base:
        logs, _ = run_concurrently(base, 20, random_policy, replay_every=3)
    assert all(not log.errors for log in logs), [log.errors for log in logs if log.errors]
    assert sum(log.replays_refused for log in logs) == 20 * 2 and sum(log.replays_accepted for log in logs) == 0
    stored = rows(study, "SELECT s.token, j.idx, j.answer FROM judgments j JOIN sessions s ON s.id = j.session_id")
    assert len(stored) == 20 * 8 == len(set((t, i) for t, i, _ in stored))
    sent = {(log.token, i, a) for log in logs for i, a in log.sent.items()}
    assert set(stored) == sent
    assert rows(study, "SELECT COUNT(*), COUNT(finished_at) FROM sessions") == [(20, 20)]


def test_server_killed_mid_load_and_restarted_loses_nothing(tmp_path, folders):
    """The real ``human_eval.py serve`` process is SIGKILLed under 20 evaluators, then started again."""
    db = tmp_path / "hype.sqlite"
    args = ["--real", str(folders["real"]), "--fake", str(folders["fake"]), "--db", str(db),
            "--block-size", "20", "--tutorial-size", "2"]
    write_images(folders["real"], 12, 61, prefix="b")  # 12 more of each, for blocks of 20
    write_images(folders["fake"], 12, 199, prefix="b")
    server, base = serve_process(args)
    port = int(base.rsplit(":", 1)[1])
    at_kill = {}

    def crash_and_restart() -> None:
        nonlocal server
        while True:
            time.sleep(0.02)
            with sqlite3.connect(db) as conn:
                n = conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
            if n >= 60:
                break
        server.send_signal(signal.SIGKILL)
        server.wait()
        with sqlite3.connect(db) as conn:
            at_kill["judgments"] = conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
        server, _ = serve_process(args, port=port)

    watcher = threading.Thread(target=crash_and_restart)
    watcher.start()
    try:
        logs, _ = run_concurrently(base, 20, random_policy, replay_every=5, retry_for=60.0)
    finally:
        watcher.join()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert 60 <= at_kill["judgments"] < 20 * 22  # killed mid-load
    assert all(not log.errors for log in logs), [log.errors for log in logs if log.errors]
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT s.token, j.idx, j.answer FROM judgments j JOIN sessions s ON s.id = j.session_id "
                              "WHERE s.finished_at IS NOT NULL").fetchall()
    sent = {(log.token, i, a) for log in logs for i, a in log.sent.items()}
    assert len(sent) == 20 * 22 and set(stored) == sent and len(stored) == len(sent)


def test_demo_writes_a_servable_study(tmp_path, capsys):
    human_eval.main(["demo", "--out", str(tmp_path / "demo"), "-n", "8"])
    printed = capsys.readouterr().out
    for name, count in (("real", 8), ("fake", 8), ("tutorial_fake", 10)):
        files = sorted((tmp_path / "demo" / name).glob("*.png"))
        assert len(files) == count and Image.open(files[0]).size == (32, 32)
    assert "--block-size 6" in printed
    study = Study.open(tmp_path / "demo" / "hype.sqlite", tmp_path / "demo" / "real", tmp_path / "demo" / "fake",
                       Protocol(block_size=6, tutorial_size=10), tutorial_fake=tmp_path / "demo" / "tutorial_fake", seed=0)
    client = create_app(study).test_client()
    assert len(play(client, new_session(client), lambda s: "fake")) == 16


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_on_sigint_and_sigterm_even_when_started_with_sigint_ignored(tmp_path, folders, sig):
    """A background job inherits SIGINT ignored; ``serve`` must still stop on it (and on SIGTERM) and exit 0."""
    args = ["--real", str(folders["real"]), "--fake", str(folders["fake"]), "--db", str(tmp_path / "hype.sqlite"),
            "--block-size", "4", "--tutorial-size", "2"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child, as from `serve &`
    try:
        server, _ = serve_process(args)
    finally:
        signal.signal(signal.SIGINT, previous)
    server.send_signal(sig)
    assert server.wait(timeout=30) == 0
