"""The pretraining objective: the active terms, one encoder call for all their views, ``combine``.

``PretrainObjective(model, terms)(batch) -> (total, logged)``. Every view that some term reads
is encoded on its visible tokens, all views in ONE ``model.forward_encoder`` call (the masks
drop ~70 % of the tokens, so each extra view costs about one more masked encoder pass; measured
1.5-2x faster steps at L = 700 than embedding every point, ``benchmarks/throughput.py``); each
term gets the rows of its views. Keeping every loss inside one module's ``forward`` is what
lets DDP see the whole graph. :func:`combine` weights and logs the terms in one place.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from vitnirs.batching.contract import PAD_WAVELENGTH
from vitnirs.train.objectives.base import ObjectiveTerm, view_of

__all__ = ["PretrainObjective", "build_terms", "combine", "concat_views", "term_classes"]

Tensor = torch.Tensor
VIEW_KEYS = ("values", "wavelengths", "valid", "level", "mask")
_PAD = {"values": 0.0, "wavelengths": PAD_WAVELENGTH, "valid": False, "mask": False}  # the contract's padding


def _pad_to(x: Tensor, length: int, fill: float | bool) -> Tensor:
    return x if x.shape[1] == length else F.pad(x, (0, length - x.shape[1]), value=fill)


def concat_views(views: Sequence[Mapping[str, Any]], keys: Sequence[str] = VIEW_KEYS) -> dict[str, Any]:
    """Several views of a batch as one batch: padded to the longest ``L_i`` (the batch
    contract's padding: values 0, wavelengths 1000 nm, valid/mask False) and concatenated
    along the batch axis; ``meta`` only when every view has it."""
    length = max(v["values"].shape[1] for v in views)
    cat: dict[str, Any] = {
        key: torch.cat([_pad_to(v[key], length, _PAD[key]) if key in _PAD else v[key] for v in views])
        for key in keys
    }
    metas = [v.get("meta") for v in views]
    cat["meta"] = torch.cat(metas) if all(m is not None for m in metas) else None
    return cat


def combine(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted total of the loss terms present; returns ``(total, {term: value, "total": ...})``.

    ``weights`` maps a term name to its weight; a term with weight 0 or absent from
    ``terms`` is not added. Every term is returned detached (0-d tensors, so the caller can
    move them to the host in one transfer) for logging.
    """
    total = None
    for name, value in terms.items():
        w = weights.get(name, 0.0)
        if w:
            total = w * value if total is None else total + w * value
    if total is None:
        raise ValueError("no loss term with a positive weight: check the losses.* weights")
    logged = {name: value.detach() for name, value in terms.items()}
    logged["total"] = total.detach()
    return total, logged


def term_classes() -> dict[str, type[ObjectiveTerm]]:
    """Every :class:`ObjectiveTerm` of this package, by name (each module is imported once)."""
    package = __name__.rsplit(".", 1)[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{info.name}")
    found: dict[str, type[ObjectiveTerm]] = {}
    stack = list(ObjectiveTerm.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith(package):
            found[cls.name] = cls
    return found


def build_terms(losses: Any, *, model: nn.Module, n_datasets: int | None = None) -> list[ObjectiveTerm]:
    """The terms with a positive weight in the config's ``losses`` section, in a fixed order."""
    classes = term_classes()
    return [
        cls.from_config(losses, model=model, n_datasets=n_datasets)
        for _, cls in sorted(classes.items())
        if getattr(losses, cls.config_key(), 0.0) > 0
    ]


class PretrainObjective(nn.Module):
    """The weighted terms on one model: what the loop (and DDP) wraps.

    Parameters
    ----------
    model:
        A :class:`~vitnirs.model.mae.SpectralMAE` (``forward_encoder(batch) -> EncoderOutput``).
    terms:
        :class:`ObjectiveTerm` s (their own modules, heads or teachers, are trained or saved
        with the objective, not with the encoder); or a mapping ``{name: weight}`` of the terms
        that need no options (tests, benchmarks).
    """

    def __init__(self, model: nn.Module, terms: Sequence[ObjectiveTerm] | Mapping[str, float]):
        super().__init__()
        self.model = model
        if isinstance(terms, Mapping):
            classes = term_classes()
            unknown = sorted(set(terms) - set(classes))
            if unknown:
                raise ValueError(f"unknown objective term(s) {unknown}; known: {sorted(classes)}")
            terms = [classes[name](weight) for name, weight in terms.items() if weight]
        names = [t.name for t in terms]
        if len(set(names)) < len(names):
            raise ValueError(f"objective terms must have distinct names; got {names}")
        self.terms = nn.ModuleList(t for t in terms if t.weight)  # weight 0: not computed, as build_terms
        self.weights = {t.name: t.weight for t in self.terms}
        self.views = list(dict.fromkeys(v for t in self.terms for v in t.views))  # in first-use order

    def forward(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        n = batch["values"].shape[0]
        out = self.model.forward_encoder(concat_views([view_of(batch, v) for v in self.views]))
        encoded = {v: out.rows(slice(i * n, (i + 1) * n)) for i, v in enumerate(self.views)}
        values: dict[str, Tensor] = {}
        for term in self.terms:
            values.update(term(self.model, encoded, batch))
        return combine(values, self.weights)

    def after_step(self) -> None:
        """Each term's post-step update (EMA teachers), after the optimiser step."""
        for term in self.terms:
            term.after_step(self.model)

    def term_state(self) -> dict[str, Tensor]:
        """The terms' own tensors (heads, teachers), saved in ``trainer.pt``; empty when none."""
        return {k: v.detach().cpu() for k, v in self.terms.state_dict().items()}
