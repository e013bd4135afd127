"""A study's results from its database: quality control, HYPE scores, the most deceptive fakes."""

from __future__ import annotations

from collections import defaultdict

from .protocol import Protocol, modal_exposure, tutorial_passed
from .scores import ITERATIONS, hype_infinity, hype_time
from .store import Store


def session_status(rows: list[dict], protocol: Protocol) -> str:
    """``included``, ``excluded`` (failed the tutorial) or ``in_progress`` for one session's judgments."""
    tutorial = [r for r in rows if r["phase"] == "tutorial"]
    if len(tutorial) == protocol.tutorial_size and not tutorial_passed(
            [r["truth"] for r in tutorial], [r["answer"] for r in tutorial], protocol.qualify):
        return "excluded"
    return "included" if rows and rows[0]["finished_at"] else "in_progress"


def evaluator_thresholds(rows: list[dict]) -> dict[int, float]:
    """HYPE_time threshold per evaluator: the modal exposure of each block, averaged over their blocks."""
    blocks = defaultdict(list)
    for r in rows:
        blocks[(r["evaluator"], r["session_id"], r["block"])].append(r["exposure_ms"])
    per_evaluator = defaultdict(list)
    for (evaluator, _, _), exposures in blocks.items():
        per_evaluator[evaluator].append(modal_exposure(exposures))
    return {e: sum(v) / len(v) for e, v in per_evaluator.items()}


def summarize(store: Store, iterations: int = ITERATIONS, seed: int = 0, top: int = 12) -> dict:
    """Everything the results page and ``human_eval.py report`` show.

    Only finished sessions whose evaluator passed the tutorial count in the score; the counts say how
    many sessions are excluded and how many are still in progress.

    Returns:
        ``mode``, ``protocol``, ``counts``, ``score`` (None before any session is included; otherwise
        the HYPE_inf or HYPE_time numbers, plus the error rates in both modes), ``thresholds``
        (HYPE_time, per evaluator), ``deceptive_fakes`` (fakes by the share of "real" answers).
    """
    settings = store.settings()
    protocol = Protocol(**settings["protocol"])
    rows = store.judgments()
    sessions = defaultdict(list)
    for r in rows:
        sessions[r["session_id"]].append(r)
    status = {sid: session_status(srows, protocol) for sid, srows in sessions.items()}
    evaluation = [r for r in rows if r["phase"] == "evaluation" and status[r["session_id"]] == "included"]
    included_evaluators = {r["evaluator"] for r in evaluation}
    excluded_evaluators = {srows[0]["evaluator"] for sid, srows in sessions.items()
                           if status[sid] == "excluded"} - included_evaluators
    started = store.session_counts()
    counts = {"sessions_started": started["started"], "sessions_finished": started["finished"],
              "sessions_included": sum(s == "included" for s in status.values()),
              "sessions_excluded": sum(s == "excluded" for s in status.values()),
              "evaluators_included": len(included_evaluators), "evaluators_excluded": len(excluded_evaluators),
              "judgments": len(rows), "judgments_scored": len(evaluation)}
    out = {"mode": protocol.mode, "protocol": protocol.to_dict(), "counts": counts, "score": None,
           "thresholds": {}, "deceptive_fakes": []}
    if not evaluation:
        return out
    errors = hype_infinity([r["truth"] for r in evaluation], [r["answer"] for r in evaluation],
                           [r["evaluator"] for r in evaluation], [r["image_id"] for r in evaluation],
                           iterations=iterations, seed=seed)
    if protocol.mode == "time":
        out["thresholds"] = evaluator_thresholds(evaluation)
        out["score"] = {**hype_time(list(out["thresholds"].values()), iterations=iterations, seed=seed),
                        "fake_error": errors["fake_error"], "real_error": errors["real_error"],
                        "error": errors["score"], "judgments": errors["judgments"]}
    else:
        out["score"] = {**errors, "evaluators": len(included_evaluators)}
    fakes = defaultdict(lambda: [0, 0, ""])
    for r in evaluation:
        if r["truth"] == "fake":
            entry = fakes[r["image_id"]]
            entry[0] += r["answer"] == "real"
            entry[1] += 1
            entry[2] = r["image_path"]
    ranked = sorted(fakes.items(), key=lambda kv: (-kv[1][0] / kv[1][1], -kv[1][1], kv[0]))
    out["deceptive_fakes"] = [{"image_id": k, "path": p, "judged_real": n_real, "judgments": n, "rate": n_real / n}
                              for k, (n_real, n, p) in ranked[:top] if n_real > 0]
    return out
