"""The human-evaluation screenshots of docs/human_eval.md, taken in headless Chromium.

What it does:
    Writes the offline demo images (``hype.demo``: digits as reals, blended digits as fakes, noise as
    the tutorial's obvious fakes), opens a HYPE_inf study on them, and fills it with ``--evaluators``
    simulated evaluators through the app's test client: each answers a real image correctly with
    probability 0.8 and a fake with a probability drawn in [0.5, 0.8]; the first ``--careless`` of them
    answer the tutorial at random, so the quality control has someone to exclude. Then Chromium
    (``hype.browser``) opens the results page and, in a new session that passes the tutorial, the
    first evaluation image, and saves both pages as PNG. It also prints ``human_eval.py report`` on
    the study.

Usage::

    python benchmarks/hype_screenshots.py                 # docs/images/hype_evaluation.png, hype_results.png
    python benchmarks/hype_screenshots.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import human_eval  # noqa: E402
from hype.app import create_app  # noqa: E402
from hype.browser import chromium  # noqa: E402
from hype.demo import write_demo  # noqa: E402
from hype.protocol import Protocol  # noqa: E402
from hype.server import running  # noqa: E402
from hype.study import Study  # noqa: E402

FLIP = {"real": "fake", "fake": "real"}


def simulate(study: Study, evaluators: int, careless: int, seed: int) -> None:
    client = create_app(study).test_client()
    rng = random.Random(seed)
    for k in range(evaluators):
        token = client.post("/api/sessions", json={"worker": f"sim{k:02d}"}).get_json()["token"]
        with study.store.connection() as conn:
            truth = [r["truth"] for r in conn.execute(
                "SELECT truth FROM trials t JOIN sessions s ON s.id = t.session_id WHERE s.token = ? ORDER BY idx",
                (token,))]
        p_fake = rng.uniform(0.5, 0.8)
        state = client.get(f"/api/sessions/{token}").get_json()
        while state["phase"] != "done":
            right = truth[state["trial"]]
            if state["phase"] == "tutorial":
                answer = rng.choice(("real", "fake")) if k < careless else right
            else:
                answer = right if rng.random() < (0.8 if right == "real" else p_fake) else FLIP[right]
            state = client.post(f"/api/sessions/{token}/answers",
                                json={"trial": state["trial"], "answer": answer,
                                      "response_ms": rng.uniform(600, 3000)}).get_json()["next"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--evaluators", type=int, default=12)
    parser.add_argument("--careless", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hype-shots-") as tmp:
        demo = write_demo(Path(tmp) / "images", n_real=40, n_fake=40, n_obvious=10, seed=args.seed)
        protocol = Protocol(mode="infinity", block_size=30, blocks=1, tutorial_size=10)
        study = Study.open(Path(tmp) / "hype.sqlite", demo["real"], demo["fake"], protocol,
                           tutorial_fake=demo["tutorial_fake"], seed=args.seed)
        simulate(study, args.evaluators, args.careless, args.seed)
        human_eval.main(["report", "--db", str(study.store.path)])  # the report shown in docs/human_eval.md
        with running(create_app(study)) as base:
            with chromium(900, 1000) as driver:
                driver.get(f"{base}/results?token={study.results_token}")
                WebDriverWait(driver, 30).until(lambda d: all(
                    d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
                    for img in d.find_elements(By.TAG_NAME, "img")))
                driver.save_screenshot(str(out / "hype_results.png"))
            with chromium(900, 640) as driver:
                driver.get(base + "/")
                driver.find_element(By.ID, "begin").click()
                wait = WebDriverWait(driver, 30)
                trial = wait.until(lambda d: d.find_elements(By.ID, "trial"))[0]
                with study.store.connection() as conn:
                    token = trial.get_attribute("data-token")
                    truth = [r["truth"] for r in conn.execute(
                        "SELECT truth FROM trials t JOIN sessions s ON s.id = t.session_id WHERE s.token = ? "
                        "ORDER BY idx", (token,))]
                for k in range(protocol.tutorial_size):
                    wait.until(lambda d: trial.get_attribute("data-ready") == "1")
                    driver.find_element(By.ID, truth[k]).click()
                wait.until(lambda d: trial.get_attribute("data-ready") == "1"
                           and trial.get_attribute("data-phase") == "evaluation")
                driver.save_screenshot(str(out / "hype_evaluation.png"))
    print(f"wrote {out / 'hype_evaluation.png'} and {out / 'hype_results.png'}")


if __name__ == "__main__":
    main()
