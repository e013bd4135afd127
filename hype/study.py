"""A study: the protocol, the image folders, their catalogue and the database, checked together."""

from __future__ import annotations

import random
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .images import StudyImage, catalogue, scan_folder
from .protocol import Protocol, Trial, images_needed, plan_session
from .store import Store


@dataclass
class Study:
    """What the web app serves. Build it with :meth:`open`."""

    store: Store
    protocol: Protocol
    images: dict[str, StudyImage]
    results_token: str
    display_px: int = 256
    pools: dict[str, list[str]] = field(default_factory=dict)
    rng: random.Random | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, db: str | Path, real: str | Path, fake: str | Path, protocol: Protocol,
             tutorial_real: str | Path | None = None, tutorial_fake: str | Path | None = None,
             display_px: int = 256, seed: int | None = None) -> Study:
        """Create the study in ``db`` or reopen it (same options required).

        Args:
            db: the SQLite file; its folder is created.
            real, fake: folders of real and generated images (searched recursively).
            protocol: what sessions show and how they are scored.
            tutorial_real, tutorial_fake: folders for the tutorial (default: ``real`` / ``fake``).
                Obviously bad fakes (an early checkpoint) make the tutorial's quality control bite.
            display_px: the side at which images are shown (scaled without smoothing).
            seed: draw the sessions' images from one seeded generator (reproducible demos and
                tests); None (the default) draws each session from the system's secure source, so
                nobody can predict which images a session gets.

        Raises:
            ValueError: naming the option at fault (a missing or too small folder, a study in ``db``
                created with other options, an image a stored session uses that is gone).
        """
        if display_px < 16:
            raise ValueError(f"--display-px must be >= 16, got {display_px}")
        folders = {"real": (real, "--real"), "fake": (fake, "--fake"),
                   "tutorial_real": (tutorial_real or real, "--tutorial-real" if tutorial_real else "--real"),
                   "tutorial_fake": (tutorial_fake or fake, "--tutorial-fake" if tutorial_fake else "--fake")}
        scanned = {pool: scan_folder(folder, option) for pool, (folder, option) in folders.items()}
        settings = {"protocol": protocol.to_dict(),
                    **{pool: str(Path(folder).resolve()) for pool, (folder, _) in folders.items()}}
        for truth in ("real", "fake"):
            shared = settings[f"tutorial_{truth}"] == settings[truth]
            need = images_needed(protocol, shared)
            if len(scanned[truth]) < need:
                raise ValueError(
                    f"--{truth} {folders[truth][0]} has {len(scanned[truth])} images; a session needs {need} "
                    f"({protocol.blocks} block(s) of {protocol.block_size}, half {truth}"
                    + (f", plus {protocol.tutorial_size // 2} for the tutorial" if shared else "") + ")")
            tutorial = f"tutorial_{truth}"
            if len(scanned[tutorial]) < protocol.tutorial_size // 2:
                raise ValueError(f"{folders[tutorial][1]} {folders[tutorial][0]} has {len(scanned[tutorial])} images; "
                                 f"the tutorial needs {protocol.tutorial_size // 2}")
        store = Store(db)
        keys = store.initialise(settings)
        images = catalogue(keys["secret"], scanned)
        # Ordered by path, so a seeded draw does not depend on the study's secret.
        pools = {pool: [i.id for i in sorted(images.values(), key=lambda i: i.relpath) if i.pool == pool]
                 for pool in folders}
        store.sync_images(images)
        rng = None if seed is None else random.Random(seed)
        return cls(store, protocol, images, keys["results_token"], display_px, pools, rng)

    def new_session(self, worker: str | None) -> str:
        """Draw a session's plan and store it; returns the session token."""
        if self.rng is None:
            plan = self.plan(random.Random(secrets.randbits(64)))
        else:
            with self.lock:
                plan = self.plan(self.rng)
        return self.store.create_session(worker, plan)

    def plan(self, rng: random.Random) -> list[Trial]:
        same = {i.id: f"{i.truth}:{i.file}" for i in self.images.values()}
        return plan_session(rng, self.pools, self.protocol, same_image=same)
