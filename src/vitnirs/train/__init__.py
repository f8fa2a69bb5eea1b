"""Pretraining: the loop, its LR schedule, trainer state and multi-process (DDP) helpers.

``pretrain`` (``vitnirs.train.loop``) is the entry point; import it from there (it pulls in the
model and the data pipeline), the small modules below stand alone. The checkpoint format itself
is :mod:`vitnirs.checkpoint`'s.
"""

from vitnirs.train.checkpoint import load_trainer_state, save_checkpoint
from vitnirs.train.schedule import lr_at

__all__ = ["load_trainer_state", "lr_at", "save_checkpoint"]
