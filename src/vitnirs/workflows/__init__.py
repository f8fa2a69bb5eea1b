"""Workflows: what a user command runs, above the core packages (below :mod:`vitnirs.research`,
the study harness, which they never import).

Each module drives the core (``data`` → ``batching`` → ``model`` → ``train`` → ``evaluate`` →
``report``) from a :class:`~vitnirs.config.Config`; the core packages take plain arguments and
never import ``config`` or ``train`` themselves (``train`` reads the config it trains with).

- :mod:`~vitnirs.workflows.commands`  one function per ``vitnirs`` command
- :mod:`~vitnirs.workflows.sources`   a bank or the embedded demo bank + synthetic spectra → a store
- :mod:`~vitnirs.workflows.demo`      prepare → pretrain → evaluate → report
- :mod:`~vitnirs.workflows.evaluation` the evaluation suite (``vitnirs evaluate``)
- :mod:`~vitnirs.workflows.lodo`      downstream-only leave-one-dataset-out (an evaluation section)
- :mod:`~vitnirs.workflows.finetune`  encoder + head on a dataset's targets
- :mod:`~vitnirs.workflows.export`, :mod:`~vitnirs.workflows.model_card`  portable checkpoints
- :mod:`~vitnirs.workflows.embed_csv` ``vitnirs embed``: a CSV in, embeddings out
"""
