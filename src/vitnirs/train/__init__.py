"""Pretraining: the loop, its LR schedule, checkpoints and multi-process (DDP) helpers.

``pretrain`` (``vitnirs.train.loop``) is the entry point; import it from there (it pulls in the
model and the data pipeline), the small modules below stand alone.
"""

from vitnirs.train.checkpoint import latest_checkpoint, load_model, load_trainer_state, save_checkpoint
from vitnirs.train.schedule import lr_at

__all__ = ["latest_checkpoint", "load_model", "load_trainer_state", "lr_at", "save_checkpoint"]
