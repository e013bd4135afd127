"""HYPE human evaluation of a run's samples (Zhou et al. 2019): a web app, its database, the scores.

    python human_eval.py serve --real data/real_png --fake runs/dcgan_digits/predictions            # HYPE_inf
    python human_eval.py serve --real data/real_png --fake runs/dcgan_digits/predictions --mode time  # HYPE_time
    python human_eval.py report --db runs/dcgan_digits/hype.sqlite       # scores, and judgments.csv beside it
    python human_eval.py demo --out runs/hype_demo                       # offline demo folders (digits)

``serve`` prints the evaluators' address and the results page's address (with its token). The
database defaults to ``hype.sqlite`` beside the ``--fake`` folder (``runs/<name>/hype.sqlite`` for a
run's ``predictions/``); restarting with the same options resumes every session. See
docs/human_eval.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import signal
import sys
from pathlib import Path

from hype.protocol import MODES, Protocol

CSV_FIELDS = ("session", "evaluator", "worker", "status", "idx", "phase", "block", "image_id", "pool", "image_path",
              "truth", "answer", "correct", "exposure_ms", "shown_ms", "response_ms", "answered_at")


def protocol_from_args(args: argparse.Namespace) -> Protocol:
    return Protocol.paper(args.mode, block_size=args.block_size, blocks=args.blocks, tutorial_size=args.tutorial_size,
                          qualify=args.qualify, step_up_ms=args.step_up_ms, step_down_ms=args.step_down_ms,
                          feedback=args.feedback)


def serve(args: argparse.Namespace) -> None:
    from werkzeug.serving import make_server

    from hype.app import create_app
    from hype.study import Study

    db = Path(args.db) if args.db else Path(args.fake).resolve().parent / "hype.sqlite"
    study = Study.open(db, args.real, args.fake, protocol_from_args(args), args.tutorial_real, args.tutorial_fake,
                       display_px=args.display_px)
    server = make_server(args.host, args.port, create_app(study), threaded=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{server.server_port}"
    print(f"HYPE_{'time' if study.protocol.mode == 'time' else 'inf'} study in {db}", flush=True)
    print(f"evaluators: {base}/", flush=True)
    print(f"results:    {base}/results?token={study.results_token}", flush=True)
    # A server started as a background job inherits SIGINT ignored (and SIGTERM is how service managers stop
    # it): both stop it here, the database closed cleanly, whatever the parent set.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: stop ``serve`` as Ctrl-C does."""
    raise KeyboardInterrupt


def fmt(value: float, percent: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.1f}%" if percent else f"{value:.1f} ms"


def report(args: argparse.Namespace) -> None:
    from hype.results import session_status, summarize
    from hype.store import Store

    if not Path(args.db).is_file():
        raise ValueError(f"--db {args.db}: no such file")
    store = Store(args.db)
    summary = summarize(store, iterations=args.iterations, seed=args.seed)
    c, s = summary["counts"], summary["score"]
    print(f"mode: {summary['mode']}  evaluators scored: {c['evaluators_included']}  "
          f"excluded by the tutorial: {c['evaluators_excluded']}  sessions started/finished: "
          f"{c['sessions_started']}/{c['sessions_finished']}  judgments: {c['judgments']}")
    if s is None:
        print("no finished session of a qualified evaluator yet")
    elif summary["mode"] == "time":
        print(f"HYPE_time: {fmt(s['score'], False)}  95% CI {fmt(s['ci_low'], False)} - {fmt(s['ci_high'], False)}  "
              f"(error on fakes {fmt(s['fake_error'], True)}, on reals {fmt(s['real_error'], True)})")
    else:
        print(f"HYPE_inf: {fmt(s['score'], True)}  95% CI {fmt(s['ci_low'], True)} - {fmt(s['ci_high'], True)}  "
              f"(error on fakes {fmt(s['fake_error'], True)}, on reals {fmt(s['real_error'], True)})")
    for fake in summary["deceptive_fakes"][:5]:
        print(f"  judged real {fake['judged_real']}/{fake['judgments']}: {fake['path']}")
    protocol = Protocol(**summary["protocol"])
    rows = store.judgments()
    by_session: dict[int, list[dict]] = {}
    for r in rows:
        by_session.setdefault(r["session_id"], []).append(r)
    status = {sid: session_status(srows, protocol) for sid, srows in by_session.items()}
    out = Path(args.csv) if args.csv else Path(args.db).with_name("judgments.csv")
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "status": status[r["session_id"]], "correct": int(r["truth"] == r["answer"])})
    print(f"{len(rows)} judgments written to {out}")


def demo(args: argparse.Namespace) -> None:
    from hype.demo import write_demo

    if args.n < 6:
        raise ValueError(f"-n must be >= 6 (5 real images go to the tutorial), got {args.n}")
    folders = write_demo(args.out, n_real=args.n, n_fake=args.n, seed=args.seed, generator=args.generator)
    print("wrote " + ", ".join(str(f) for f in folders.values()))
    block = min(20, 2 * (args.n - 5))  # the default tutorial takes 5 of the real images
    print(f"try: python human_eval.py serve --real {folders['real']} --fake {folders['fake']} "
          f"--tutorial-fake {folders['tutorial_fake']} --block-size {block}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    s = commands.add_parser("serve", help="run the evaluation web app")
    s.add_argument("--real", required=True, help="folder of real images (recursive)")
    s.add_argument("--fake", required=True, help="folder of generated images (recursive), e.g. runs/<name>/predictions")
    s.add_argument("--mode", choices=MODES, default="infinity", help="HYPE_inf (unlimited time) or HYPE_time")
    s.add_argument("--db", help="SQLite file (default: hype.sqlite beside the --fake folder)")
    s.add_argument("--tutorial-real", help="real images for the tutorial (default: --real)")
    s.add_argument("--tutorial-fake", help="fakes for the tutorial; obviously bad ones make its quality control bite "
                                           "(default: --fake)")
    s.add_argument("--block-size", type=int, help="images per block, even (default: 150 time, 100 infinity)")
    s.add_argument("--blocks", type=int, help="blocks per evaluator (default: 3 time, 1 infinity)")
    s.add_argument("--tutorial-size", type=int, default=10, help="tutorial images, even (default 10)")
    s.add_argument("--qualify", type=float, default=0.65,
                   help="accuracy needed on the tutorial's reals and on its fakes to be scored (default 0.65)")
    s.add_argument("--step-up-ms", type=int, default=30, help="HYPE_time: exposure added after an error (default 30)")
    s.add_argument("--step-down-ms", type=int, default=10,
                   help="HYPE_time: exposure removed after a correct answer (default 10)")
    s.add_argument("--feedback", action=argparse.BooleanOptionalAction, default=None,
                   help="say right/wrong after each evaluation answer (default: on in time mode, off in infinity)")
    s.add_argument("--display-px", type=int, default=256, help="side of the displayed image in pixels")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    s.set_defaults(run=serve)

    r = commands.add_parser("report", help="print the scores and write the judgments as CSV")
    r.add_argument("--db", required=True, help="the study's SQLite file")
    r.add_argument("--csv", help="CSV path (default: judgments.csv beside the database)")
    r.add_argument("--iterations", type=int, default=10_000, help="bootstrap resamples")
    r.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    r.set_defaults(run=report)

    d = commands.add_parser("demo", help="write offline demo folders (digits) to try a study")
    d.add_argument("--out", required=True, help="destination folder")
    d.add_argument("-n", type=int, default=60, help="real and fake images each")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--generator", help="a generator checkpoint whose samples are the fakes")
    d.set_defaults(run=demo)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
