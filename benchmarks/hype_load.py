"""Load on the HYPE web app: concurrent scripted evaluators against ``human_eval.py serve`` on 127.0.0.1.

What is measured:
    The real server (``human_eval.py serve``, werkzeug's threaded server, SQLite in WAL mode) runs in
    its own process on a fresh database of demo images (``hype.demo``: digits and blended digits).
    ``--evaluators`` threads in this process each create a session and answer every trial through
    the JSON API (``hype.simulate``), random answers, every ``--replay-every``-th answer sent twice.
    With ``--restart-after S`` the server is killed (SIGKILL) S seconds in and started again on the
    same database; the evaluators retry until it is back.

    Afterwards the database is read back and compared with what each evaluator sent: every answer
    the server accepted must be stored exactly once with the same value ("lost" and "duplicated"
    must be 0), every session complete, every replay refused with 409. The table gives the wall time,
    the judgments per second and the latency of an answer request (median, 95th percentile, max).

Usage::

    python benchmarks/hype_load.py                                 # 20 evaluators x (10 + 100) trials
    python benchmarks/hype_load.py --evaluators 20 --restart-after 3
    python benchmarks/hype_load.py --evaluators 5 --block-size 20  # a quick check
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hype.server import serve_process  # noqa: E402
from hype.simulate import random_policy, run_concurrently  # noqa: E402


def start_server(db: Path, demo: dict[str, Path], args: argparse.Namespace, port: int = 0) -> tuple[subprocess.Popen, str]:
    return serve_process(["--real", str(demo["real"]), "--fake", str(demo["fake"]), "--tutorial-fake",
                          str(demo["tutorial_fake"]), "--db", str(db), "--block-size", str(args.block_size),
                          "--tutorial-size", str(args.tutorial_size)], port=port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluators", type=int, default=20)
    parser.add_argument("--block-size", type=int, default=100)
    parser.add_argument("--tutorial-size", type=int, default=10)
    parser.add_argument("--replay-every", type=int, default=10)
    parser.add_argument("--restart-after", type=float, default=0.0, help="kill and restart the server after S seconds")
    args = parser.parse_args()

    from hype.demo import write_demo

    with tempfile.TemporaryDirectory(prefix="hype-load-") as tmp:
        n = args.block_size // 2 + args.tutorial_size // 2
        demo = write_demo(Path(tmp) / "images", n_real=n, n_fake=n, n_obvious=max(args.tutorial_size // 2, 1))
        db = Path(tmp) / "hype.sqlite"
        server, base = start_server(db, demo, args)
        port = int(base.rsplit(":", 1)[1])
        restarted = None
        if args.restart_after > 0:
            import threading

            def restart() -> None:
                nonlocal server, restarted
                time.sleep(args.restart_after)
                server.send_signal(signal.SIGKILL)
                server.wait()
                server, _ = start_server(db, demo, args, port=port)
                restarted = time.perf_counter()

            threading.Thread(target=restart, daemon=True).start()
        try:
            logs, wall = run_concurrently(base, args.evaluators, random_policy, replay_every=args.replay_every,
                                          retry_for=60.0 if args.restart_after > 0 else 0.0)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        conn = sqlite3.connect(db)
        stored = conn.execute("SELECT s.token, j.idx, j.answer FROM judgments j JOIN sessions s ON s.id = j.session_id").fetchall()
        finished = conn.execute("SELECT token FROM sessions WHERE finished_at IS NOT NULL").fetchall()
        conn.close()

    per_session = args.tutorial_size + args.block_size
    sent = {(log.token, i): a for log in logs for i, a in log.sent.items()}
    stored_map: dict[tuple[str, int], list[str]] = {}
    for token, idx, answer in stored:
        stored_map.setdefault((token, idx), []).append(answer)
    lost = sum(1 for key, answer in sent.items() if stored_map.get(key, [None])[0] != answer)
    duplicated = sum(len(v) - 1 for v in stored_map.values())
    complete = sum(1 for log in logs if (log.token,) in set(finished) and len(log.sent) == per_session)
    errors = [e for log in logs for e in log.errors]
    latencies = np.array([x for log in logs for x in log.latencies_ms])
    judgments = len(sent)
    print("| evaluators | trials each | judgments | wall s | judgments/s | answer ms p50 / p95 / max | lost | duplicated "
          "| replays refused | sessions complete | server restarts |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.evaluators} | {per_session} | {judgments} | {wall:.1f} | {judgments / wall:.0f} | "
          f"{np.median(latencies):.1f} / {np.percentile(latencies, 95):.1f} / {latencies.max():.1f} | {lost} | "
          f"{duplicated} | {sum(log.replays_refused for log in logs)}/"
          f"{sum(log.replays_refused + log.replays_accepted for log in logs)} | {complete}/{args.evaluators} | "
          f"{1 if restarted else 0} |")
    if errors:
        print(f"{len(errors)} evaluator errors, first: {errors[0]}")
    if lost or duplicated or errors or complete != args.evaluators:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
