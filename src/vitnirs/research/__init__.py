"""Research: the study harness, above :mod:`vitnirs.workflows` (it imports the workflows; no
workflow or core package imports it). Not needed to prepare, pretrain, evaluate or embed.

- :mod:`~vitnirs.research.commands`     ``vitnirs ablate``, ``study``, ``lodo``
- :mod:`~vitnirs.research.ablate`, :mod:`~vitnirs.research.ablate_table`  variants and their table
- :mod:`~vitnirs.research.study`, :mod:`~vitnirs.research.study_table`  recipes under one budget on one
  scorecard, with controls
- :mod:`~vitnirs.research.strict_lodo`  strict leave-one-dataset-out (pretrain without each dataset);
  the downstream-only kind is an evaluation section (:mod:`vitnirs.workflows.lodo`)
- ``recipes/``  ``patch.yaml`` (the shipped model's recipe) and the ``patch_*.yaml`` variants on it
  (``vitnirs ablate``'s default set); a bare name finds them (``--config patch``, ``base: patch``)
"""
