"""The Flask app: instructions, the trial page and its JSON API, images by id, the results page.

Every request that names a session, an image or a trial is checked against the database before
anything is written: an unknown session is 404, a trial that is not the session's next one (a replay
or a skip) is 409, a malformed body is 400, an oversized one 413, and none of them writes a row.
"""

from __future__ import annotations

import hmac
import math
import re

from flask import Flask, Response, abort, jsonify, render_template, request, send_file

from .images import noise_mask
from .protocol import ANSWERS, next_exposure
from .results import summarize
from .store import Store, now
from .study import Study

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
IMAGE_ID = re.compile(r"[0-9a-f]{20}")
WORKER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MASKS = 4  # the paper flashes four masks of 30 ms each after the image
MAX_RESPONSE_MS = 3_600_000.0


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
        abort(400, description=f"'{name}' must be a number in [{low:g}, {high:g}]")
    return float(value)


def create_app(study: Study) -> Flask:
    """The app serving ``study``; run it with any WSGI server (``human_eval.py serve`` uses werkzeug's)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 4096  # answers are a few dozen bytes
    app.json.sort_keys = False
    store: Store = study.store
    protocol = study.protocol

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'"
        if request.path.startswith("/api/") or request.path.startswith("/results"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(409)
    @app.errorhandler(413)
    def error(e):
        if request.path.startswith("/api/"):
            return jsonify(error=e.name, detail=e.description), e.code
        return Response(f"{e.code} {e.name}: {e.description}", status=e.code, mimetype="text/plain")

    def session_or_404(conn, token: str):
        session = store.session(conn, token) if TOKEN.fullmatch(token) else None
        if session is None:
            abort(404, description="unknown session")
        return session

    def state(conn, session) -> dict:
        """What the page shows next: the trial, its exposure (HYPE_time), the progress."""
        trial = store.next_trial(conn, session["id"])
        if trial is None:
            return {"phase": "done", "code": session["token"][:8]}
        if trial["phase"] == "tutorial":
            first, total = 0, protocol.tutorial_size
        else:  # counted within the block
            first, total = protocol.tutorial_size + trial["block"] * protocol.block_size, protocol.block_size
        timed = protocol.mode == "time" and trial["phase"] == "evaluation"
        exposure = next_exposure(store.block_answers(conn, session["id"], trial["phase"], trial["block"]),
                                 protocol) if timed else None
        return {"phase": trial["phase"], "trial": trial["idx"], "position": trial["idx"] - first + 1,
                "total": total, "block": trial["block"] + 1, "blocks": protocol.blocks,
                "image": f"/images/{trial['image_id']}", "exposure_ms": exposure,
                "feedback": trial["phase"] == "tutorial" or protocol.feedback, "masks": MASKS if timed else 0}

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.get("/")
    def index():
        return render_template("index.html", protocol=protocol)

    @app.post("/api/sessions")
    def new_session():
        body = request.get_json(silent=True)
        if body is None:
            body = {}
        if not isinstance(body, dict) or set(body) - {"worker"}:
            abort(400, description="body must be a JSON object with at most a 'worker' field")
        worker = body.get("worker") or None
        if worker is not None and (not isinstance(worker, str) or not WORKER.fullmatch(worker)):
            abort(400, description="'worker' must be 1-64 characters of letters, digits, '_', '.', '@', '-'")
        token = study.new_session(worker)
        return jsonify(token=token, url=f"/s/{token}"), 201

    @app.get("/s/<token>")
    def session_page(token: str):
        with store.connection() as conn:
            session_or_404(conn, token)
        return render_template("session.html", token=token, protocol=protocol, display_px=study.display_px)

    @app.get("/api/sessions/<token>")
    def session_state(token: str):
        with store.connection() as conn:
            return jsonify(state(conn, session_or_404(conn, token)))

    @app.post("/api/sessions/<token>/answers")
    def answer(token: str):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, description="body must be a JSON object")
        unknown = set(body) - {"trial", "answer", "response_ms", "shown_ms"}
        if unknown:
            abort(400, description=f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        trial_index = body.get("trial")
        if isinstance(trial_index, bool) or not isinstance(trial_index, int):
            abort(400, description="'trial' must be an integer")
        if body.get("answer") not in ANSWERS:
            abort(400, description="'answer' must be 'real' or 'fake'")
        response_ms = _number(body.get("response_ms"), "response_ms", 0.0, MAX_RESPONSE_MS)
        shown_ms = body.get("shown_ms")
        if shown_ms is not None:
            shown_ms = _number(shown_ms, "shown_ms", 0.0, 60_000.0)
        with store.connection() as conn:
            with store.transaction(conn):
                session = session_or_404(conn, token)
                trial = store.next_trial(conn, session["id"])
                if trial is None:
                    abort(409, description="the session is complete")
                if trial_index != trial["idx"]:
                    abort(409, description=f"trial {trial_index} is not the next one ({trial['idx']}): "
                                           "answers are accepted once, in order")
                timed = protocol.mode == "time" and trial["phase"] == "evaluation"
                exposure = next_exposure(store.block_answers(conn, session["id"], trial["phase"], trial["block"]),
                                         protocol) if timed else None
                conn.execute(
                    "INSERT INTO judgments (session_id, idx, phase, block, image_id, truth, answer, exposure_ms, "
                    "shown_ms, response_ms, answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (session["id"], trial["idx"], trial["phase"], trial["block"], trial["image_id"], trial["truth"],
                     body["answer"], exposure, shown_ms, response_ms, now()))
                if store.next_trial(conn, session["id"]) is None:
                    conn.execute("UPDATE sessions SET finished_at = ? WHERE id = ?", (now(), session["id"]))
            reply = {"accepted": True, "next": state(conn, store.session(conn, token))}
            if trial["phase"] == "tutorial" or protocol.feedback:
                reply.update(correct=body["answer"] == trial["truth"], truth=trial["truth"])
        return jsonify(reply)

    @app.get("/images/<image_id>")
    def image(image_id: str):
        found = study.images.get(image_id) if IMAGE_ID.fullmatch(image_id) else None
        if found is None:
            abort(404, description="unknown image")
        return send_file(found.file, mimetype=found.mimetype, max_age=3600, conditional=True, etag=False)

    @app.get("/masks/<int:index>")
    def mask(index: int):
        if not 0 <= index < MASKS:
            abort(404, description="unknown mask")
        return Response(noise_mask(index), mimetype="image/png", headers={"Cache-Control": "max-age=3600"})

    def check_results_token() -> None:
        given = request.args.get("token", "")
        if not hmac.compare_digest(given.encode(), study.results_token.encode()):
            abort(403, description="the results need the token printed when the server started (?token=...)")

    @app.get("/results")
    def results_page():
        check_results_token()
        return render_template("results.html", r=summarize(store),
                               token=study.results_token)

    @app.get("/api/results")
    def results_json():
        check_results_token()
        return jsonify(summarize(store))

    return app
