"""A torchrun rank other than 0: it trains in step with rank 0 and writes nothing.

Rank 0 runs the real run (see distributed.py); a follower builds the same
model, then carries out rank 0's plans one at a time until told to exit.
"""

from __future__ import annotations

import contextlib
import os

from minigpt.checkpoint import load_checkpoint
from minigpt.config import Config, config_from_dict
from minigpt.distributed import EXIT, STEP, Cluster
from minigpt.errors import DivergedError
from minigpt.rundir.layout import RunDir
from minigpt.service.run import load_corpus, trainer_from_checkpoint
from minigpt.train import Trainer


def follow(
    config: Config | None, path: str | os.PathLike[str], resume: bool, cluster: Cluster
) -> int:
    """Train with rank 0 until it says exit; the exit code (0)."""
    if resume:
        ckpt = RunDir(path).model_ckpt
        trainer = trainer_from_checkpoint(config, load_checkpoint(ckpt), str(ckpt), cluster=cluster)
    else:
        assert config is not None
        trainer = Trainer(config, load_corpus(config), cluster=cluster)
    while (plan := cluster.receive())["op"] != EXIT:
        if plan["op"] != STEP:
            continue  # rank 0 is paused, idle or evaluating: wait for the next plan
        wanted = config_from_dict(plan["config"])
        if wanted != trainer.config:
            trainer.apply_config(wanted)
        with contextlib.suppress(DivergedError):  # rank 0 saw it too and decides what follows
            trainer.train_step()
    return 0
