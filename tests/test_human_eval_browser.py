"""HYPE in a real browser: headless Chromium clicks and types through a tutorial and an evaluation block
on a live server, and the database then holds exactly those judgments.

Runs wherever Debian's ``chromium`` and ``chromium-driver`` are installed (``.ci/run`` installs them).
It is skipped only on a developer machine without them; under CI (``CI=true``) their absence fails.
"""

from __future__ import annotations

import os

import pytest
from test_human_eval import rows, write_images

from hype.app import create_app
from hype.browser import find_chromium
from hype.protocol import Protocol
from hype.server import running
from hype.study import Study

if find_chromium() is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium and chromedriver for the browser test: .ci/run installs them with apt-get")
    pytest.skip("chromium / chromedriver not installed (apt-get install -y chromium chromium-driver)",
                allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402  (selenium is only needed when the browser is there)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from hype.browser import chromium  # noqa: E402


def answer_all(driver, answers: list[str], refresh_after: int | None = None) -> None:
    """Answer the page's trials in order: even positions by clicking, odd ones with the R / F keys."""
    wait = WebDriverWait(driver, 60)
    trial = wait.until(lambda d: d.find_elements(By.ID, "trial"))[0]  # the start page navigates here
    for k, answer in enumerate(answers):
        if k == refresh_after:
            driver.refresh()  # the page reloads mid-session and resumes at the next trial
            trial = wait.until(lambda d: d.find_elements(By.ID, "trial"))[0]
        wait.until(lambda d, trial=trial: trial.get_attribute("data-ready") == "1")
        if k % 2 == 0:
            driver.find_element(By.ID, answer).click()
        else:
            driver.find_element(By.TAG_NAME, "body").send_keys(answer[0])
        # The answer was taken when the buttons are disabled again (until the next image is ready).
        wait.until(lambda d, trial=trial, k=k: trial.get_attribute("data-ready") == "0" or k == len(answers) - 1)
    wait.until(lambda d: d.find_element(By.ID, "trial").get_attribute("data-phase") == "done")


@pytest.mark.parametrize("mode", ["infinity", "time"])
def test_browser_session_is_stored(tmp_path, mode):
    real, fake = write_images(tmp_path / "real", 8, 60), write_images(tmp_path / "fake", 8, 200)
    protocol = Protocol(mode=mode, block_size=4, blocks=1, tutorial_size=2, feedback=mode == "time")
    study = Study.open(tmp_path / "hype.sqlite", real, fake, protocol)
    answers = ["fake", "real", "real", "fake", "fake", "real"]
    with running(create_app(study)) as base, chromium() as driver:
        driver.get(base + "/")
        driver.find_element(By.ID, "worker").send_keys("browser-1")
        driver.find_element(By.ID, "begin").click()
        answer_all(driver, answers, refresh_after=3)
        code = driver.find_element(By.ID, "code").text
        driver.get(f"{base}/results?token={study.results_token}")
        assert "results" in driver.find_element(By.TAG_NAME, "h1").text
    stored = rows(study, "SELECT s.token, e.worker, j.phase, j.answer, j.exposure_ms, j.shown_ms, j.response_ms "
                         "FROM judgments j JOIN sessions s ON s.id = j.session_id "
                         "JOIN evaluators e ON e.id = s.evaluator_id ORDER BY j.idx")
    assert [r[3] for r in stored] == answers
    assert [r[2] for r in stored] == ["tutorial"] * 2 + ["evaluation"] * 4
    assert {r[1] for r in stored} == {"browser-1"} and stored[0][0].startswith(code)
    assert all(r[6] > 0 for r in stored)
    if mode == "time":
        exposures = [r[4] for r in stored[2:]]
        assert exposures[0] == 500 and all(e is not None for e in exposures)
        # The page keeps the image up until at least the exposure minus half a 60 Hz frame.
        assert all(shown >= exposure - 8.5 for _, _, _, _, exposure, shown, _ in stored[2:])
    else:
        assert all(r[4] is None and r[5] is None for r in stored)
    assert rows(study, "SELECT COUNT(finished_at) FROM sessions") == [(1,)]
