"""Pretrained models shipped inside the package.

``models/default/`` is a portable checkpoint (see :mod:`vitnirs.workflows.export`): the default of
``load_encoder("default")``; its ``model_card.md`` says what it was trained on and how it
compares with classical calibrations.

>>> from vitnirs.models import default_checkpoint
>>> default_checkpoint().name
'default'
"""

from __future__ import annotations

from pathlib import Path

from vitnirs.checkpoint import CONFIG_FILE, MODEL_FILE
from vitnirs.errors import VitnirsError

__all__ = ["DEFAULT_DIR", "default_checkpoint"]

DEFAULT_DIR = Path(__file__).resolve().parent / "default"


def default_checkpoint() -> Path:
    """The directory of the shipped portable checkpoint (``model.safetensors`` + ``config.json``).

    Raises
    ------
    VitnirsError
        When the files are missing (e.g. an install that dropped the package data).
    """
    missing = [f for f in (MODEL_FILE, CONFIG_FILE) if not (DEFAULT_DIR / f).is_file()]
    if missing:
        raise VitnirsError(
            f"the shipped default model is missing ({', '.join(missing)} not in {DEFAULT_DIR}); "
            "reinstall vitnirs (pip install .) or pass the path of a checkpoint directory"
        )
    return DEFAULT_DIR
