"""Pretraining objectives as parts: one file per term, :func:`combine` weights and logs them.

- :mod:`.base`            :class:`ObjectiveTerm` (name, views it reads, optional teacher), the views, EMA
- :mod:`.objective`       :class:`PretrainObjective` (one encoder call for every view), ``combine``
- :mod:`.reconstruction`  ``mae``: masked prediction of the masked patches
- :mod:`.clean_reconstruction` ``mae_clean``: masked prediction of the clean (pre-nuisance) patches
- :mod:`.baseline`        ``baseline``: input vs baseline-corrected view
- :mod:`.contrastive`     ``contrastive``: VICReg / InfoNCE between two nuisance views
- :mod:`.semi_supervised` ``semi_supervised``: the optional per-dataset target head
- :mod:`.fewshot_ridge`   ``fewshot_ridge``: closed-form ridge on mixture groups → their mixing weights

Adding a term is a file here and a ``losses.<name>_weight`` key in the config.
"""

from vitnirs.train.objectives.base import VIEWS, ObjectiveTerm, ema_update, view_of
from vitnirs.train.objectives.objective import (
    PretrainObjective,
    build_terms,
    combine,
    concat_views,
    term_classes,
)

__all__ = [
    "VIEWS",
    "ObjectiveTerm",
    "PretrainObjective",
    "build_terms",
    "combine",
    "concat_views",
    "ema_update",
    "term_classes",
    "view_of",
]
