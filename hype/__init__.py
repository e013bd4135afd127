"""HYPE human evaluation (Zhou et al. 2019): a Flask app, its SQLite store, the protocol and scores.

Entry point: ``python human_eval.py serve|report`` (docs/human_eval.md). The protocol and score
modules import only the standard library and numpy; the app needs Flask.
"""

from .protocol import Protocol, modal_exposure, next_exposure, tutorial_passed
from .scores import bootstrap_mean, hype_infinity, hype_time

__all__ = ["Protocol", "bootstrap_mean", "hype_infinity", "hype_time", "modal_exposure", "next_exposure",
           "tutorial_passed"]
