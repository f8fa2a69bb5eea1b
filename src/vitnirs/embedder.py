"""`SpectralEmbedder`: a pretrained encoder as a scikit-learn transformer, ``(n, L) → (n, D)``.

It drops into any scikit-learn or nirs4all pipeline in front of a linear model::

    >>> from sklearn.linear_model import RidgeCV                     # doctest: +SKIP
    >>> from sklearn.pipeline import make_pipeline                   # doctest: +SKIP
    >>> model = make_pipeline(SpectralEmbedder(wavelengths=wl), RidgeCV()).fit(X, y)  # doctest: +SKIP

The constructor stores only JSON-serialisable parameters (a checkpoint *path*, not a model),
so the estimator clones, pickles and passes nirs4all's pipeline serialisation. ``fit``
validates the parameters and the spectra and loads the encoder (kept in a small per-process
cache, never pickled); ``transform`` converts the spectra to what the encoder read during
pretraining (absorbance, wavelengths in nm, ascending) and calls
:func:`vitnirs.embedding.embed_spectra`. Metadata ids are left unknown (0): the embedding
depends on the spectrum and its grid alone (the encoder was pretrained with metadata dropout).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from vitnirs.data.signal import normalize_signal_type, normalize_unit, to_nm
from vitnirs.data.spectra_input import (
    absorbance_of,
    check_spectra,
    fill_gaps,
    grid_from_columns,
    grid_from_parameter,
)
from vitnirs.embedding import POOLINGS, cached_encoder, check_readable, embed_absorbance, resolve_checkpoint
from vitnirs.errors import VitnirsError
from vitnirs.model.readout import feature_names, readout_dim
from vitnirs.pretrained import SHIPPED

if TYPE_CHECKING:
    from vitnirs.checkpoint import CheckpointInfo

__all__ = ["SpectralEmbedder"]


def _numeric(est: BaseEstimator, X: Any, *, reset: bool) -> np.ndarray:
    """scikit-learn's validation of X as ``(n, L)`` float64, NaN allowed; a DataFrame with a
    non-numeric column gets the package's message naming it, not pandas' conversion error."""
    columns = getattr(X, "dtypes", None)
    if columns is not None:
        from pandas.api.types import is_numeric_dtype

        text = [str(c) for c, t in columns.items() if not is_numeric_dtype(t)]
        if text:
            raise ValueError(
                f"X has non-numeric column(s) {', '.join(map(repr, text[:5]))}: select the spectral "
                "columns only (e.g. X[wavelength_columns]) and keep ids and targets apart"
            )
    return validate_data(est, X, dtype=np.float64, reset=reset, ensure_all_finite="allow-nan")


# ----------------------------------------------------------------------------- the estimator
class SpectralEmbedder(TransformerMixin, BaseEstimator):
    """Embed spectra with a pretrained vitnirs encoder: ``(n, L) → (n, D)`` float64.

    Parameters
    ----------
    checkpoint:
        ``"default"`` or ``"robust"`` (the models shipped with the package: the default is the best
        within a dataset, the robust one barely moves under baseline drift, scatter and wavelength
        shift, at a cost within a dataset; their model cards give the figures), a checkpoint
        directory (``model.safetensors`` + ``config.json``) or a run directory (its newest checkpoint).
    wavelengths:
        The grid of X's columns, in ``wavelength_unit``: a list of L numbers (any order,
        no repeats); ``{"first": a, "last": b}`` for an evenly spaced grid of X.shape[1]
        points from ``a`` to ``b``; or None to read it from the column names of a pandas
        DataFrame X. A list (rather than a numpy array) keeps ``get_params`` JSON-serialisable.
    wavelength_unit:
        ``"nm"`` or ``"cm-1"`` (converted to nm, 1e7 / ν).
    signal_type:
        What X holds: ``"absorbance"``; ``"reflectance"``/``"transmittance"`` (0-1) or
        ``"reflectance%"``/``"transmittance%"`` are converted to absorbance log10(1/R) as
        ``vitnirs prepare`` does; ``"unknown"`` is passed as given (with a warning).
    batch_size:
        Spectra per forward pass (the result does not depend on it, up to float rounding).
    device:
        Torch device of the encoder (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
    pooling:
        How the encoder's valid output tokens (N, D) become the embedding
        (:func:`vitnirs.model.readout.readout`):
        ``"auto"`` (the default): the readout the checkpoint recommends (its config's
        ``evaluation.readout``, set by ``vitnirs export --readout``; ``"mean"`` for older ones),
        resolved at ``fit`` into ``pooling_``;
        ``"mean"``: the encoder's embedding, the mean of its tokens (D columns);
        ``"mean+level"``: that plus each spectrum's mean and log std (D + 2 columns), over the
        points the encoder reads (after the checkpoint's point cap, so for a spectrum longer than
        ``max_points`` the stats of its ``max_points`` evenly spaced points), float32-rounded;
        ``"mean+std"`` / ``"mean+max"``: the mean and the std / max over the tokens (2D columns);
        ``"groups4"`` / ``"groups8"``: the mean of each of G contiguous groups of tokens (G·D).
    align:
        Standard-free alignment between instruments. ``fit`` records the mean embedding of its
        spectra (the source domain); :meth:`fit_domain` records the mean embedding of a target
        domain's *unlabelled* spectra (e.g. a new instrument's calibration spectra, never its
        test rows); ``transform`` then moves embeddings by ``source mean - domain mean``, so a
        head fitted on the source applies to the target. Until ``fit_domain`` is called the
        domain is the source (no shift). Metadata are never used: the embedding depends on the
        spectrum and its grid alone (the metadata rule).

    Attributes
    ----------
    n_features_in_ : int
        L, the number of spectral columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        X's column names, when fit on a DataFrame with string column names.
    wavelengths_nm_ : ndarray of shape (L,)
        The grid of X's columns in nm, in column order.
    checkpoint_ : str
        The checkpoint directory the encoder was loaded from.
    pooling_ : str
        The readout used (``pooling``, with ``"auto"`` resolved).
    embedding_dim_ : int
        The number of output columns (:func:`vitnirs.model.readout.readout_dim` of ``pooling_``): D,
        the encoder's width, with ``"mean"`` (D + 2 with ``"mean+level"``, 2D with ``"mean+std"``...).
    source_mean_, domain_mean_ : ndarray of shape (embedding_dim_,)
        With ``align``: the mean embedding of the ``fit`` spectra and of the current domain's
        reference spectra (:meth:`fit_domain`).

    Notes
    -----
    Passes scikit-learn's ``check_estimator`` with a ``{"first", "last"}`` grid, except
    ``check_methods_subset_invariance``: a subset's embeddings match the full batch's only to
    float32 rounding (~1e-7), the check asks rtol=1e-7. With an explicit grid of L values, the
    checks that feed X of another width fail by design (tests/test_embedder.py).
    """

    def __init__(
        self,
        checkpoint: str = "default",
        *,
        wavelengths: Any = None,
        wavelength_unit: str = "nm",
        signal_type: str = "absorbance",
        batch_size: int = 256,
        device: str = "cpu",
        pooling: str = "auto",
        align: bool = False,
    ):
        self.checkpoint = checkpoint
        self.wavelengths = wavelengths
        self.wavelength_unit = wavelength_unit
        self.signal_type = signal_type
        self.batch_size = batch_size
        self.device = device
        self.pooling = pooling
        self.align = align

    # -- scikit-learn protocol ------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> SpectralEmbedder:
        """Validate the parameters and the ``(n, L)`` spectra, load the encoder; return self."""
        import torch

        unit = normalize_unit(self.wavelength_unit)
        normalize_signal_type(self.signal_type)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)):
            raise ValueError(f"batch_size must be an integer >= 1; got {self.batch_size!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {self.batch_size}")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device {self.device!r} is not a torch device ({err})") from None

        # the grid first: a DataFrame's non-spectral column is named before any conversion fails
        grid = grid_from_columns(getattr(X, "columns", None)) if self.wavelengths is None else None
        X = _numeric(self, X, reset=True)  # [n, L], NaN allowed (filled as vitnirs embed fills them)
        if grid is None:
            grid = grid_from_parameter(self.wavelengths, X.shape[1])
        with np.errstate(divide="ignore"):
            grid_nm = to_nm(grid, unit)
        filled, empty, _ = fill_gaps(X)
        if empty.all():
            raise ValueError("every spectrum of X is empty (all NaN)")
        check_spectra(filled[~empty], grid_nm, name="wavelengths")  # embed_spectra's rules, checked at fit
        self.wavelengths_nm_ = grid_nm
        self._order = np.argsort(grid_nm, kind="stable")

        ckpt = resolve_checkpoint(self.checkpoint)
        self.checkpoint_ = str(ckpt)
        model, info = cached_encoder(ckpt, self.device)
        self._encoder = (model, info)
        # the coverage rule (vitnirs.data.coverage): CoverageError (a ValueError) or warnings
        for note in check_readable(model, info, grid_nm, source="SpectralEmbedder", axis=grid, unit=unit):
            warnings.warn(note, UserWarning, stacklevel=2)
        pooling = info.readout if self.pooling == "auto" else self.pooling
        self.pooling_ = pooling
        self.embedding_dim_ = readout_dim(pooling, int(model.encoder.d_model))
        if self.align:  # the source domain: the spectra fitted on
            self.source_mean_ = np.nanmean(self._embed(X), axis=0)  # empty rows are NaN
            self.domain_mean_ = self.source_mean_.copy()
        return self

    def fit_domain(self, X: Any) -> SpectralEmbedder:
        """Record a target domain from its unlabelled ``(n, L)`` spectra (``align=True`` only).

        Only spectra are read (no target, no test row needed): their mean embedding becomes
        ``domain_mean_``, and ``transform`` moves embeddings by ``source_mean_ - domain_mean_``.
        """
        check_is_fitted(self, "embedding_dim_")
        if not self.align:
            raise ValueError("fit_domain needs SpectralEmbedder(align=True)")
        X = _numeric(self, X, reset=False)  # [n, L]
        self.domain_mean_ = np.nanmean(self._embed(X), axis=0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``(n, L)`` spectra on the fitted grid → ``(n, embedding_dim_)`` float64 embeddings."""
        check_is_fitted(self, "embedding_dim_")
        X = _numeric(self, X, reset=False)  # [n, L]
        Z = self._embed(X)
        if self.align:
            Z = Z - self.domain_mean_ + self.source_mean_
        return Z

    def _embed(self, X: np.ndarray) -> np.ndarray:
        """``(n, L)`` validated spectra → ``(n, embedding_dim_)`` float64, no alignment.

        NaN gaps are filled along the axis and a row with no value gets a NaN embedding, each with
        a warning (:func:`~vitnirs.data.spectra_input.fill_gaps`, the rule of ``vitnirs embed``).
        """
        X, empty, filled = fill_gaps(X)
        if filled:
            warnings.warn(f"SpectralEmbedder: {filled}", UserWarning, stacklevel=3)
        if empty.any():
            warnings.warn(
                f"SpectralEmbedder: {int(empty.sum())} spectra with no values (rows "
                f"{np.flatnonzero(empty)[:10].tolist()}) get NaN embeddings",
                UserWarning,
                stacklevel=3,
            )
        absorbance = self._absorbance(X[~empty])
        model, info = self._loaded()
        Zv = embed_absorbance(
            model,
            absorbance,
            self.wavelengths_nm_[self._order],
            info=info,
            pooling=self.pooling_,
            batch_size=int(self.batch_size),
            device=self.device,
        )  # [n_non_empty, D]
        if Zv.shape[1] != self.embedding_dim_:  # e.g. the checkpoint changed on disk since fit
            raise VitnirsError(
                f"{self.checkpoint_}: the encoder now gives {Zv.shape[1]} columns, "
                f"{self.embedding_dim_} at fit; fit again"
            )
        Z = np.full((len(X), Zv.shape[1]), np.nan)
        Z[~empty] = Zv
        return Z

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``emb_0 … emb_{D-1}`` for ``"mean"``; :func:`vitnirs.model.readout.feature_names` of ``pooling_``."""
        check_is_fitted(self, "embedding_dim_")
        pooling = getattr(self, "pooling_", self.pooling)  # fitted by an older version: no pooling_
        dim = int(self.embedding_dim_)  # readout_dim is D + 2 (mean+level), else a multiple of D
        d_model = dim - 2 if pooling == "mean+level" else dim // readout_dim(pooling, 1)
        return feature_names(d_model, pooling)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN gaps are filled, an empty row embeds to NaN
        tags.requires_fit = True
        return tags

    # -- pickling: the torch model is never part of the state ---------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # BaseEstimator's (adds _sklearn_version)
        state.pop("_encoder", None)
        return state

    # -- helpers ------------------------------------------------------------------------------
    def _loaded(self) -> tuple[Any, CheckpointInfo]:
        """The encoder and its checkpoint info: those loaded in fit, else (after unpickling) reloaded."""
        loaded = getattr(self, "_encoder", None)
        if loaded is None:
            path = self.checkpoint_
            if self.checkpoint in SHIPPED or not Path(path).exists():
                path = resolve_checkpoint(self.checkpoint)
            loaded = cached_encoder(Path(path), self.device)
            self._encoder = loaded
        return loaded

    def _absorbance(self, X: np.ndarray) -> np.ndarray:
        """``(n, L)`` absorbance in ascending-wavelength order (a new array)."""
        absorbance, notes = absorbance_of(X[:, self._order], self.signal_type)
        for note in notes:
            warnings.warn(f"SpectralEmbedder: {note}", UserWarning, stacklevel=3)
        return absorbance
