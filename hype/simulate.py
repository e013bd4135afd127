"""Scripted evaluators over HTTP: many sessions at once against a running server.

Each simulated evaluator creates a session, then answers every trial through the JSON API exactly as
the page does, with a policy choosing the answer. Every ``replay_every``-th answer is sent twice; the
second copy must be refused (409), which checks under load that a judgment is never stored twice.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field


def request(base: str, path: str, body: dict | None = None, timeout: float = 60.0,
            retry_for: float = 0.0) -> tuple[int, dict]:
    """GET (no body) or POST JSON to ``base + path``; returns ``(status, JSON reply)``.

    Args:
        retry_for: keep retrying a refused or dropped connection for this many seconds (a server
            being restarted); 0 raises at once.
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    deadline = time.monotonic() + retry_for
    while True:
        try:
            with urllib.request.urlopen(req, timeout=timeout) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@dataclass
class EvaluatorLog:
    """What one simulated evaluator sent and saw."""

    token: str = ""
    sent: dict[int, str] = field(default_factory=dict)  # trial -> answer accepted by the server
    latencies_ms: list[float] = field(default_factory=list)
    replays_refused: int = 0
    replays_accepted: int = 0
    resent: int = 0  # answers stored by a request whose reply was lost (server restart)
    errors: list[str] = field(default_factory=list)


def run_evaluator(base: str, policy: Callable[[dict, random.Random], str], seed: int, replay_every: int = 0,
                  worker: str | None = None, retry_for: float = 0.0) -> EvaluatorLog:
    """One full session; ``policy(state, rng)`` picks ``"real"`` or ``"fake"`` for each trial.

    With ``retry_for`` > 0 the evaluator survives a server restart: a request whose connection
    failed is sent again, and a 409 on a resent answer means the first copy was stored before the
    connection dropped, which the next state (past that trial) confirms.
    """
    log = EvaluatorLog()
    rng = random.Random(seed)
    status, reply = request(base, "/api/sessions", {"worker": worker} if worker else {}, retry_for=retry_for)
    if status != 201:
        log.errors.append(f"create: {status} {reply}")
        return log
    log.token = reply["token"]
    status, state = request(base, f"/api/sessions/{log.token}", retry_for=retry_for)
    n = 0
    while status == 200 and state["phase"] != "done":
        body = {"trial": state["trial"], "answer": policy(state, rng), "response_ms": float(rng.randint(200, 2000))}
        start = time.perf_counter()
        status, reply = request(base, f"/api/sessions/{log.token}/answers", body, retry_for=retry_for)
        log.latencies_ms.append(1000 * (time.perf_counter() - start))
        if status == 409 and retry_for:
            status, state = request(base, f"/api/sessions/{log.token}", retry_for=retry_for)
            if status == 200 and (state["phase"] == "done" or state["trial"] > body["trial"]):
                log.sent[body["trial"]] = body["answer"]
                log.resent += 1
                continue
        if status != 200:
            log.errors.append(f"answer {body['trial']}: {status} {reply}")
            return log
        log.sent[body["trial"]] = body["answer"]
        n += 1
        if replay_every and n % replay_every == 0:
            again, _ = request(base, f"/api/sessions/{log.token}/answers", body, retry_for=retry_for)
            if again == 409:
                log.replays_refused += 1
            else:
                log.replays_accepted += 1
        state = reply["next"]
    return log


def run_concurrently(base: str, evaluators: int, policy: Callable[[dict, random.Random], str],
                     replay_every: int = 0, retry_for: float = 0.0) -> tuple[list[EvaluatorLog], float]:
    """``evaluators`` sessions in parallel threads; returns their logs and the wall time in seconds."""
    logs: list[EvaluatorLog | None] = [None] * evaluators
    barrier = threading.Barrier(evaluators)

    def work(k: int) -> None:
        barrier.wait()  # start together, so the sessions really overlap
        logs[k] = run_evaluator(base, policy, seed=k, replay_every=replay_every, worker=f"sim{k:03d}",
                                retry_for=retry_for)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(evaluators)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return logs, time.perf_counter() - start


def random_policy(state: dict, rng: random.Random) -> str:
    return rng.choice(("real", "fake"))
