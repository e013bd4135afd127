"""The HYPE protocol: block composition, the time staircase, the tutorial's quality control.

Pure functions of the answers so far; nothing here touches the database or the web app.

Settings from Zhou et al., "HYPE: A Benchmark for Human eYe Perceptual Evaluation of Generative
Models", NeurIPS 2019 (arXiv:1904.01121), Sec. 2:

- HYPE_time: exposures in [100 ms, 1000 ms]; every block starts at 500 ms and holds 150 images,
  half real, half generated; three blocks per evaluator; a weighted staircase that "theoretically
  leads to a 75% accuracy threshold"; an evaluator's threshold is the modal exposure of a block,
  averaged over their blocks.
- HYPE_inf: one block of 100 images (50 real, 50 fake), no time limit; the score is the error rate.
- Quality control: an evaluator qualifies by classifying at least 65% of the real AND 65% of the
  fake images of an untimed qualification set correctly (their set has 100 images; ours is the
  tutorial, ``tutorial_size`` images, 10 by default).

The paper states the steps as "raised at 10 ms increments and reduced at 30 ms decrements,
following the 3-up/1-down adaptive staircase approach, which theoretically leads to a 75% accuracy
threshold". A staircase that moves after every answer settles where the expected move is zero,
``p * down = (1 - p) * up`` (Kaernbach 1991, the weighted up-down method), i.e. at accuracy
``p = up / (up + down)``: 75% needs the step after an error to be three times the step after a
correct answer. The defaults are therefore +30 ms after an error and -10 ms after a correct answer;
the literal reading (+10 / -30) would settle at 25% accuracy, below chance, and pin every evaluator
to 100 ms. Both steps are options (``step_up_ms``, ``step_down_ms``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

MODES = ("infinity", "time")
ANSWERS = ("real", "fake")
PHASES = ("tutorial", "evaluation")


@dataclass(frozen=True)
class Protocol:
    """What every session of a study shows and how it is scored.

    Args:
        mode: ``"infinity"`` (HYPE_inf, unlimited viewing time) or ``"time"`` (HYPE_time, staircase).
        block_size: images per evaluation block, even (half real, half fake).
        blocks: evaluation blocks per session (the staircase restarts at ``start_ms`` in each).
        tutorial_size: tutorial images, even (half real, half fake), shown untimed with feedback.
        qualify: the accuracy an evaluator needs on the tutorial's real images and, separately, on its
            fake images to count in the score.
        start_ms, min_ms, max_ms: the staircase's first exposure and its bounds (HYPE_time).
        step_up_ms: exposure added after an error; step_down_ms: exposure removed after a correct
            answer (see the module docstring for why 30 / 10).
        feedback: tell the evaluator after each evaluation answer whether it was right (the paper
            does in HYPE_time; the tutorial always does).
    """

    mode: str = "infinity"
    block_size: int = 100
    blocks: int = 1
    tutorial_size: int = 10
    qualify: float = 0.65
    start_ms: int = 500
    min_ms: int = 100
    max_ms: int = 1000
    step_up_ms: int = 30
    step_down_ms: int = 10
    feedback: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        for name in ("block_size", "tutorial_size"):
            value = getattr(self, name)
            if value < 2 or value % 2:
                raise ValueError(f"--{name.replace('_', '-')} must be an even number >= 2 (half real, half fake), got {value}")
        if self.blocks < 1:
            raise ValueError(f"--blocks must be >= 1, got {self.blocks}")
        if not 0.0 < self.qualify <= 1.0:
            raise ValueError(f"--qualify must be in (0, 1], got {self.qualify}")
        if not 0 < self.min_ms <= self.start_ms <= self.max_ms:
            raise ValueError(f"need 0 < min_ms <= start_ms <= max_ms, got {self.min_ms}, {self.start_ms}, {self.max_ms}")
        if self.step_up_ms <= 0 or self.step_down_ms <= 0:
            raise ValueError("the staircase steps must be positive")

    @classmethod
    def paper(cls, mode: str, **overrides) -> Protocol:
        """The paper's sizes for a mode (time: 3 blocks of 150 with feedback; infinity: 1 block of 100)."""
        defaults = dict(block_size=150, blocks=3, feedback=True) if mode == "time" else dict(block_size=100, blocks=1)
        defaults.update({k: v for k, v in overrides.items() if v is not None})
        return cls(mode=mode, **defaults)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def evaluation_size(self) -> int:
        return self.block_size * self.blocks


@dataclass(frozen=True)
class Trial:
    """One image of a session's plan; ``index`` runs over the tutorial, then the blocks."""

    index: int
    phase: str
    block: int
    image_id: str
    truth: str


def plan_session(rng: random.Random, pools: dict[str, Sequence[str]], protocol: Protocol,
                 same_image: dict[str, str] | None = None) -> list[Trial]:
    """Draw a session: the tutorial, then ``blocks`` blocks, each half real, half fake, shuffled.

    Images are drawn without replacement within a session, so an evaluator never sees an image twice
    (the tutorial's included, when it draws from the same folders).

    Args:
        rng: the session's random source.
        pools: image ids by pool: ``real``, ``fake``, ``tutorial_real``, ``tutorial_fake``.
        protocol: the study's protocol.
        same_image: maps an id to a key shared by ids of the same file in different pools, so a
            tutorial image is not drawn again in the evaluation.
    """
    key = (same_image or {}).get
    half_tutorial = protocol.tutorial_size // 2
    tutorial = [(i, "real") for i in rng.sample(list(pools["tutorial_real"]), half_tutorial)]
    tutorial += [(i, "fake") for i in rng.sample(list(pools["tutorial_fake"]), half_tutorial)]
    rng.shuffle(tutorial)
    seen = {key(i, i) for i, _ in tutorial}
    per_kind = protocol.evaluation_size // 2
    drawn = {}
    for truth in ANSWERS:
        available = [i for i in pools[truth] if key(i, i) not in seen]
        drawn[truth] = rng.sample(available, per_kind)
    trials = [Trial(n, "tutorial", 0, image, truth) for n, (image, truth) in enumerate(tutorial)]
    half_block = protocol.block_size // 2
    for block in range(protocol.blocks):
        chosen = [(i, t) for t in ANSWERS for i in drawn[t][block * half_block:(block + 1) * half_block]]
        rng.shuffle(chosen)
        trials += [Trial(len(trials) + n, "evaluation", block, image, truth) for n, (image, truth) in enumerate(chosen)]
    return trials


def images_needed(protocol: Protocol, shared_tutorial: bool) -> int:
    """Images of each kind (real, fake) one session draws from an evaluation folder."""
    return protocol.evaluation_size // 2 + (protocol.tutorial_size // 2 if shared_tutorial else 0)


def next_exposure(correct: Sequence[bool], protocol: Protocol) -> int:
    """The exposure in ms for the next image of a block, given the block's answers so far.

    Starts at ``start_ms``; each correct answer shortens it by ``step_down_ms``, each error lengthens
    it by ``step_up_ms``, clamped to ``[min_ms, max_ms]``.
    """
    exposure = protocol.start_ms
    for ok in correct:
        exposure += -protocol.step_down_ms if ok else protocol.step_up_ms
        exposure = min(max(exposure, protocol.min_ms), protocol.max_ms)
    return exposure


def modal_exposure(exposures: Sequence[float]) -> float:
    """The most frequent exposure of a block; ties give the mean of the tied values."""
    if not exposures:
        raise ValueError("a block without exposures has no modal exposure")
    counts = Counter(exposures)
    top = max(counts.values())
    modes = [value for value, count in counts.items() if count == top]
    return sum(modes) / len(modes)


def tutorial_passed(truths: Sequence[str], answers: Sequence[str], qualify: float) -> bool:
    """Whether the tutorial's answers reach ``qualify`` accuracy on the real and on the fake images."""
    for kind in ANSWERS:
        pairs = [(t, a) for t, a in zip(truths, answers, strict=True) if t == kind]
        if not pairs or sum(t == a for t, a in pairs) < qualify * len(pairs) - 1e-9:
            return False
    return True
