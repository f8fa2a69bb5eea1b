"""vitnirs: a universal encoder for near-infrared spectra.

Any spectrum goes in as (wavelength, value) tokens; a fixed-size embedding comes out.
``from vitnirs import SpectralEmbedder`` gives the scikit-learn transformer (the shipped
pretrained model by default); the command line is ``vitnirs``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["SpectralEmbedder", "__version__"]


def __getattr__(name: str) -> Any:
    """Lazy export: ``import vitnirs`` (and the CLI's start-up) does not load torch."""
    if name == "SpectralEmbedder":
        from vitnirs.embedder import SpectralEmbedder

        return SpectralEmbedder
    raise AttributeError(f"module 'vitnirs' has no attribute {name!r}")
