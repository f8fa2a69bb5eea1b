"""Method names in words, and what kind of method a name is.

``metrics.json`` keeps code identifiers (``krr_snv_sg1``, ``untrained+pls+align``); what a reader
sees is :func:`method_label` of them ("kernel ridge on SNV + SG1", "untrained network + PLS,
aligned"). A composite name is ``FEATURES+HEAD[+SUFFIX...]`` (an embedding or control head) or
``BASELINE[+SUFFIX...]`` (a classical pipeline, e.g. ``pls_raw+pds``); a part not listed here is
shown as it is written.

Kinds (:func:`method_kind`): ``"embedding"`` (a head on the pretrained encoder's frozen
embedding), ``"control"`` (the same heads on the untrained network, ``untrained+…`` or
``untrained(seed 1)+…``, on SNV + SG1 features, ``snv_sg1+…``, or on MiniRocket features,
``minirocket+…``: they say whether pretraining paid and are never a rival) and ``"classical"`` (everything else: the chemometric baselines).
"""

from __future__ import annotations

import re

__all__ = [
    "BASELINE_WORDS",
    "CONTROL_PREFIXES",
    "HEAD_WORDS",
    "control_prefix",
    "is_control",
    "is_embedding",
    "method_kind",
    "method_label",
]

BASELINE_WORDS = {
    "pls_raw": "PLS on raw spectra",
    "asls_snv_pls": "AsLS + SNV + PLS",
    "snv_sg1_pls": "SNV + SG1 + PLS",
    "pca_ridge": "PCA + ridge",
    "aom_pls": "AOM-PLS",
    "aom_ridge": "AOM + ridge",
    "krr_raw": "kernel ridge on raw spectra",
    "krr_snv_sg1": "kernel ridge on SNV + SG1",
    "svr_raw": "SVR on raw spectra",
    "svr_snv_sg1": "SVR on SNV + SG1",
    "logreg_snv_sg1": "logistic regression on SNV + SG1",
}
FEATURE_WORDS = {
    "embedding": "embedding",
    "untrained": "untrained network",
    "snv_sg1": "SNV + SG1 features",
    "minirocket": "MiniRocket features",
}
CONTROL_PREFIXES = ("untrained", "snv_sg1", "minirocket")  # FEATURES of the control heads
HEAD_WORDS = {
    "ridge": "ridge",
    "pls": "PLS",
    "kernel_ridge": "kernel ridge",
    "mlp": "MLP",
    "tabpfn": "TabPFN",
    "logistic": "logistic regression",
}
SUFFIX_WORDS = {"align": ", aligned", "slope_bias": " + slope/bias correction", "pds": " + PDS"}
_SEED = re.compile(r"^untrained\((seed \d+)\)$")


def is_embedding(method: str) -> bool:
    """Whether a method is a head on the pretrained encoder's frozen embedding (``embedding+ridge`` …)."""
    return str(method).startswith("embedding")


def is_control(method: str) -> bool:
    """Whether a method is a control: a head on the untrained network, SNV + SG1 or MiniRocket features."""
    return control_prefix(method) is not None


def control_prefix(method: str) -> str | None:
    """``"untrained"`` (any seed), ``"snv_sg1"`` or ``"minirocket"`` for a control head, else None."""
    first = str(method).split("+")[0]
    first = "untrained" if _SEED.match(first) else first
    return first if first in CONTROL_PREFIXES and "+" in str(method) else None


def method_kind(method: str) -> str:
    """``"embedding"``, ``"control"`` or ``"classical"`` (see the module docstring)."""
    return "embedding" if is_embedding(method) else "control" if is_control(method) else "classical"


def method_label(method: object) -> str:
    """A method identifier in words (``"krr_snv_sg1"`` → ``"kernel ridge on SNV + SG1"``,
    ``"untrained(seed 1)+pls+align"`` → ``"untrained network (seed 1) + PLS, aligned"``).

    Unknown identifiers, and ``None``, come back as ``str(method)``.
    """
    name = str(method)
    first, *rest = name.split("+")
    seed = _SEED.match(first)
    if seed or first in FEATURE_WORDS:
        if not rest:
            return name
        words = FEATURE_WORDS["untrained"] + f" ({seed.group(1)})" if seed else FEATURE_WORDS[first]
        words += " + " + HEAD_WORDS.get(rest[0], rest[0])
        rest = rest[1:]
    elif first in BASELINE_WORDS:
        words = BASELINE_WORDS[first]
    else:
        return name
    return words + "".join(SUFFIX_WORDS.get(s, f" + {s}") for s in rest)
