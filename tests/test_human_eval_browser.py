"""HYPE in a real browser: headless Chromium clicks and types through a tutorial and an evaluation block
served by ``human_eval.py serve``, survives a page reload and a server crash, and the database then
holds exactly those judgments.

Runs wherever Debian's ``chromium`` and ``chromium-driver`` are installed (``.ci/run`` installs them).
It is skipped only on a developer machine without them; under CI (``CI=true``) their absence fails.
"""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest
from test_human_eval import write_images

from hype.browser import find_chromium
from hype.server import serve_process

if find_chromium() is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium and chromedriver for the browser test: .ci/run installs them with apt-get")
    pytest.skip("chromium / chromedriver not installed (apt-get install -y chromium chromium-driver)",
                allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402  (selenium is only needed when the browser is there)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from hype.browser import chromium  # noqa: E402


def answer(driver, k: int, choice: str) -> None:
    """Wait until the page takes an answer, then give it: even ``k`` by clicking, odd ``k`` with R / F."""
    trial = WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "trial"))[0]
    WebDriverWait(driver, 60).until(lambda d: trial.get_attribute("data-ready") == "1")
    if k % 2 == 0:
        driver.find_element(By.ID, choice).click()
    else:
        driver.find_element(By.TAG_NAME, "body").send_keys(choice[0])
    assert trial.get_attribute("data-ready") == "0"  # taken: the buttons wait for the next image


@pytest.mark.parametrize("mode", ["infinity", "time"])
def test_browser_session_survives_reload_and_crash(tmp_path, mode):
    real, fake = write_images(tmp_path / "real", 8, 60), write_images(tmp_path / "fake", 8, 200)
    db = tmp_path / "hype.sqlite"
    args = ["--real", str(real), "--fake", str(fake), "--db", str(db), "--mode", mode, "--block-size", "4",
            "--blocks", "1", "--tutorial-size", "2"]
    answers = ["fake", "real", "real", "fake", "fake", "real"]
    server, base = serve_process(args)
    try:
        with chromium() as driver:
            driver.get(base + "/")
            driver.find_element(By.ID, "worker").send_keys("browser-1")
            driver.find_element(By.ID, "begin").click()
            for k in range(4):
                if k == 3:
                    driver.refresh()  # the page reloads mid-session and resumes at the next trial
                answer(driver, k, answers[k])
            trial = driver.find_element(By.ID, "trial")
            WebDriverWait(driver, 60).until(lambda d: trial.get_attribute("data-ready") == "1")
            server.send_signal(signal.SIGKILL)  # the server crashes while the 5th image is on screen
            server.wait()
            answer(driver, 4, answers[4])  # the page retries this answer until the server is back
            server, _ = serve_process(args, port=int(base.rsplit(":", 1)[1]))
            answer(driver, 5, answers[5])
            WebDriverWait(driver, 60).until(lambda d: trial.get_attribute("data-phase") == "done")
            code = driver.find_element(By.ID, "code").text
            token = driver.find_element(By.ID, "trial").get_attribute("data-token")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT s.token, e.worker, j.phase, j.answer, j.exposure_ms, j.shown_ms, j.response_ms "
                              "FROM judgments j JOIN sessions s ON s.id = j.session_id "
                              "JOIN evaluators e ON e.id = s.evaluator_id ORDER BY j.idx").fetchall()
        finished = conn.execute("SELECT COUNT(*), COUNT(finished_at) FROM sessions").fetchone()
    assert [r[3] for r in stored] == answers
    assert [r[2] for r in stored] == ["tutorial"] * 2 + ["evaluation"] * 4
    assert {r[0] for r in stored} == {token} and token.startswith(code) and {r[1] for r in stored} == {"browser-1"}
    assert all(r[6] > 0 for r in stored) and finished == (1, 1)
    if mode == "time":
        exposures = [r[4] for r in stored[2:]]
        assert exposures[0] == 500 and all(e is not None for e in exposures)
        # The page keeps the image up until at least the exposure minus half a 60 Hz frame.
        assert all(shown >= exposure - 8.5 for _, _, _, _, exposure, shown, _ in stored[2:])
    else:
        assert all(r[4] is None and r[5] is None for r in stored)
