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
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from vitnirs.data.csv import parse_wavelength
from vitnirs.data.signal import normalize_signal_type, normalize_unit, to_absorbance, to_nm
from vitnirs.errors import VitnirsError
from vitnirs.model.mae import READOUTS, readout_dim

if TYPE_CHECKING:
    from vitnirs.checkpoint import CheckpointInfo

__all__ = [
    "POOLINGS", "SpectralEmbedder", "cached_encoder", "embed_absorbance", "latent_count", "resolve_checkpoint",
]  # fmt: skip

POOLINGS = ("auto", *READOUTS)  # the checkpoint's own readout, or any of vitnirs.model.mae.readout
_CACHE: OrderedDict[tuple[str, str, int], tuple[Any, CheckpointInfo]] = OrderedDict()
_CACHE_SIZE = 4


# ----------------------------------------------------------------------------- the encoder
def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """The checkpoint directory a ``checkpoint`` parameter names (:func:`vitnirs.checkpoint.find_checkpoint`).

    ``"default"`` is the model shipped inside the package; a run directory resolves to its
    newest complete checkpoint. :class:`~vitnirs.errors.VitnirsError` when there is none.
    """
    from vitnirs.checkpoint import find_checkpoint

    return find_checkpoint(checkpoint)


def cached_encoder(ckpt_dir: Path, device: str) -> tuple[Any, CheckpointInfo]:
    """``load_encoder(ckpt_dir, device=device)``, cached per process.

    Keyed by the directory, the device and the weights file's modification time, so that
    clones (cross-validation folds, nirs4all refits) share one model and a rewritten
    checkpoint is reloaded. The model is only used for inference.
    """
    from vitnirs.checkpoint import MODEL_FILE
    from vitnirs.embedding import load_encoder

    key = (str(Path(ckpt_dir).resolve()), str(device), (Path(ckpt_dir) / MODEL_FILE).stat().st_mtime_ns)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    loaded = load_encoder(ckpt_dir, device=device)
    _CACHE[key] = loaded
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return loaded


def embed_absorbance(
    model: Any,
    absorbance: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    info: CheckpointInfo | None = None,
    pooling: str = "auto",
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Pooled embeddings of absorbance spectra on one grid → ``(n, readout_dim)`` float64.

    Parameters
    ----------
    model, info:
        A model and its checkpoint info from :func:`cached_encoder` / :func:`vitnirs.embedding.load_encoder`.
    absorbance:
        ``(n, L)`` finite absorbance spectra.
    wavelengths_nm:
        ``(L,)`` grid in nm (any order; the encoder reads (wavelength, value) pairs).
    pooling:
        One of :data:`POOLINGS` (:func:`vitnirs.model.mae.readout` of the (N, D) latents):
        ``"auto"``: the checkpoint's recommended readout (``info.readout``; ``"mean"`` without info);
        ``"mean"``: the encoder's embedding, the mean of its latents (D values);
        ``"mean+level"``: that, then each spectrum's mean and log standard deviation (the level
        the per-spectrum normalisation removed), 2 more columns. They are the model's: computed
        over the points the encoder reads, i.e. after the checkpoint's point cap (``max_points``
        evenly spaced points of a longer spectrum), and rounded to float32;
        ``"mean+std"`` / ``"mean+max"``: the mean, then the std / max over the latents (2D);
        ``"groups4"`` / ``"groups8"``: the mean of each of G contiguous groups of latents (G·D);
        ``"flat"``: every latent (N·D values; research only).
        Every kind but ``"auto"`` and ``"mean"`` needs ``info``.
    batch_size, device, progress:
        As in :func:`vitnirs.embedding.embed_spectra`.
    """
    from vitnirs.embedding import embed_spectra, with_readout

    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    if pooling != "auto":
        if info is None and pooling != "mean":
            raise ValueError(
                f"pooling {pooling!r} needs the checkpoint info (from cached_encoder / load_encoder)"
            )
        info = None if info is None else with_readout(info, pooling)
    return embed_spectra(
        model, absorbance, wavelengths_nm, info=info, batch_size=batch_size, device=device, progress=progress
    ).astype(np.float64)  # [n, readout_dim]


def latent_count(model: Any) -> int | None:
    """N of a point-token model's (N, D) Perceiver latents; None for patch tokens, whose number
    of tokens varies with the spectrum's range."""
    latents = getattr(model.encoder, "latents", None)
    return None if latents is None else int(latents.shape[1])


def feature_names(embedding_dim: int, pooling: str = "mean", n_latents: int | None = None) -> np.ndarray:
    """Output column names of ``pooling`` for latents of width ``embedding_dim`` (D).

    ``mean``: ``emb_0 … emb_{D-1}``; ``mean+std``, ``mean+max``, ``mean+level``: those, then
    ``emb_std_0 …`` / ``emb_max_0 …`` / ``level_mean``, ``level_log_std``; ``groupsG``:
    ``emb_g0_0 … emb_g0_{D-1}, emb_g1_0 …`` (group by group); ``flat``: ``emb_l0_0 …`` (latent
    by latent; needs ``n_latents``, N). As many as :func:`vitnirs.model.mae.readout_dim`.
    """
    D = int(embedding_dim)
    mean = [f"emb_{i}" for i in range(D)]
    if pooling == "mean":
        names = mean
    elif pooling == "mean+std":
        names = mean + [f"emb_std_{i}" for i in range(D)]
    elif pooling == "mean+max":
        names = mean + [f"emb_max_{i}" for i in range(D)]
    elif pooling == "mean+level":
        names = mean + ["level_mean", "level_log_std"]
    elif pooling in ("groups4", "groups8"):
        names = [f"emb_g{g}_{i}" for g in range(int(pooling[len("groups") :])) for i in range(D)]
    elif pooling == "flat":
        if n_latents is None:
            raise ValueError("feature names of pooling 'flat' need n_latents (N)")
        names = [f"emb_l{j}_{i}" for j in range(int(n_latents)) for i in range(D)]
    else:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return np.asarray(names, dtype=object)


# ----------------------------------------------------------------------------- the grid
def _grid_from_parameter(wavelengths: Any, n_features: int) -> np.ndarray:
    """``(L,)`` axis values (in the declared unit) from the ``wavelengths`` parameter."""
    if isinstance(wavelengths, dict):
        if set(wavelengths) != {"first", "last"}:
            raise ValueError(
                "wavelengths as a dict must be {'first': value, 'last': value} (an evenly spaced "
                f"grid of X.shape[1] points); got keys {sorted(map(str, wavelengths))}"
            )
        return np.linspace(float(wavelengths["first"]), float(wavelengths["last"]), n_features)
    try:
        grid = np.asarray(wavelengths, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"wavelengths must be numbers; got {wavelengths!r:.80}") from None
    if grid.ndim != 1:
        raise ValueError(f"wavelengths must be one value per column, shape (L,); got shape {grid.shape}")
    if len(grid) != n_features:
        raise ValueError(
            f"wavelengths has {len(grid)} values but X has {n_features} columns: "
            "give one wavelength per spectral column"
        )
    return grid


def _grid_from_columns(columns: Any) -> np.ndarray:
    """``(L,)`` axis values parsed from a DataFrame's column names."""
    if columns is None:
        raise ValueError(
            "wavelengths are missing: pass wavelengths=[...] (one per column of X), "
            "wavelengths={'first': ..., 'last': ...} for an evenly spaced grid, or X as a "
            "pandas DataFrame whose column names are the wavelengths"
        )
    grid = []
    for col in columns:  # names carry no decimal mark: '1100.5' and '1100,5' both read
        value = col if isinstance(col, (int, float, np.number)) else parse_wavelength(str(col), None)
        if value is None:
            raise ValueError(
                f"wavelengths=None reads the grid from X's column names, but column {col!r} is "
                "not a number: select the spectral columns only, or pass wavelengths="
            )
        grid.append(float(value))
    return np.asarray(grid, dtype=np.float64)


def _check_grid(grid_nm: np.ndarray) -> None:
    if not np.isfinite(grid_nm).all() or np.any(grid_nm <= 0):
        raise ValueError("wavelengths must be finite positive numbers")
    if len(np.unique(grid_nm)) != len(grid_nm):
        raise ValueError("wavelengths has repeated values: one wavelength per column")


# ----------------------------------------------------------------------------- the estimator
class SpectralEmbedder(TransformerMixin, BaseEstimator):
    """Embed spectra with a pretrained vitnirs encoder: ``(n, L) → (n, D)`` float64.

    Parameters
    ----------
    checkpoint:
        ``"default"`` (the model shipped with the package), a checkpoint directory
        (``model.safetensors`` + ``config.json``) or a run directory (its newest checkpoint).
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
        How the encoder's (N, D) latents (point tokens) or valid patch tokens (patch tokens)
        become the embedding (:func:`vitnirs.model.mae.readout`):
        ``"auto"`` (the default): the readout the checkpoint recommends (its config's
        ``evaluation.readout``, set by ``vitnirs export --readout``; ``"mean"`` for older ones),
        resolved at ``fit`` into ``pooling_``;
        ``"mean"``: the encoder's embedding, the mean of its latents (D columns);
        ``"mean+level"``: that plus each spectrum's mean and log std (D + 2 columns), over the
        points the encoder reads (after the checkpoint's point cap, so for a spectrum longer than
        ``max_points`` the stats of its ``max_points`` evenly spaced points), float32-rounded;
        ``"mean+std"`` / ``"mean+max"``: the mean and the std / max over the latents (2D columns);
        ``"groups4"`` / ``"groups8"``: the mean of each of G contiguous groups of latents (G·D);
        ``"flat"``: every latent (N·D columns; research only; point tokens only).
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
        The number of output columns (:func:`vitnirs.model.mae.readout_dim` of ``pooling_``): D,
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

        columns = getattr(X, "columns", None) if self.wavelengths is None else None
        X = validate_data(self, X, dtype=np.float64)  # [n, L]
        if self.wavelengths is None:
            grid = _grid_from_columns(columns)
        else:
            grid = _grid_from_parameter(self.wavelengths, X.shape[1])
        with np.errstate(divide="ignore"):
            grid_nm = to_nm(grid, unit)
        _check_grid(grid_nm)
        self.wavelengths_nm_ = grid_nm
        self._order = np.argsort(grid_nm, kind="stable")

        ckpt = resolve_checkpoint(self.checkpoint)
        self.checkpoint_ = str(ckpt)
        model, info = cached_encoder(ckpt, self.device)
        self._encoder = (model, info)
        pooling = info.readout if self.pooling == "auto" else self.pooling
        width = int(model.encoder.d_model)  # the latents (patch tokens) are (N, d_model)
        n_latents = latent_count(model)
        if n_latents is None and pooling == "flat":
            raise ValueError("pooling 'flat' needs Perceiver latents; this checkpoint has patch tokens")
        if (
            n_latents is not None
            and pooling.startswith("groups")
            and n_latents < int(pooling[len("groups") :])
        ):
            raise ValueError(
                f"pooling {pooling!r} needs at least as many latents; the encoder has {n_latents}"
            )
        self.pooling_ = pooling
        self._latent_shape = (n_latents, width)
        self.embedding_dim_ = readout_dim(pooling, n_latents or 0, width)
        if self.align:  # the source domain: the spectra fitted on
            self.source_mean_ = self._embed(X).mean(axis=0)
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
        X = validate_data(self, X, dtype=np.float64, reset=False)  # [n, L]
        self.domain_mean_ = self._embed(X).mean(axis=0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``(n, L)`` spectra on the fitted grid → ``(n, embedding_dim_)`` float64 embeddings."""
        check_is_fitted(self, "embedding_dim_")
        X = validate_data(self, X, dtype=np.float64, reset=False)  # [n, L]
        Z = self._embed(X)
        if self.align:
            Z = Z - self.domain_mean_ + self.source_mean_
        return Z

    def _embed(self, X: np.ndarray) -> np.ndarray:
        """``(n, L)`` validated spectra → ``(n, embedding_dim_)`` float64, no alignment."""
        absorbance = self._absorbance(X)
        model, info = self._loaded()
        Z = embed_absorbance(
            model,
            absorbance,
            self.wavelengths_nm_[self._order],
            info=info,
            pooling=self.pooling_,
            batch_size=int(self.batch_size),
            device=self.device,
        )
        if Z.shape[1] != self.embedding_dim_:  # e.g. the checkpoint changed on disk since fit
            raise VitnirsError(
                f"{self.checkpoint_}: the encoder now gives {Z.shape[1]} columns, "
                f"{self.embedding_dim_} at fit; fit again"
            )
        return Z

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``emb_0 … emb_{D-1}`` for ``"mean"``, see :func:`feature_names` for the other poolings."""
        check_is_fitted(self, "embedding_dim_")
        pooling = getattr(self, "pooling_", self.pooling)  # fitted by an older version: no pooling_
        shape = getattr(self, "_latent_shape", None)
        if shape is None:  # fitted by a version that did not record it: mean, mean+level, mean+std
            width = {"mean": self.embedding_dim_, "mean+level": self.embedding_dim_ - 2}.get(
                pooling, self.embedding_dim_ // 2
            )
            shape = (None, width)
        return feature_names(shape[1], pooling, n_latents=shape[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
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
            if self.checkpoint == "default" or not Path(path).exists():
                path = resolve_checkpoint(self.checkpoint)
            loaded = cached_encoder(Path(path), self.device)
            self._encoder = loaded
        return loaded

    def _absorbance(self, X: np.ndarray) -> np.ndarray:
        """``(n, L)`` absorbance in ascending-wavelength order (a new array)."""
        values = X[:, self._order]
        absorbance, _, notes = to_absorbance(values, normalize_signal_type(self.signal_type))
        for note in notes:
            warnings.warn(f"SpectralEmbedder: {note}", UserWarning, stacklevel=3)
        absorbance = np.array(absorbance, dtype=np.float64)
        if not np.isfinite(absorbance).all():
            row = int(np.flatnonzero(~np.isfinite(absorbance).all(axis=1))[0])
            raise ValueError(f"spectrum in row {row} is not finite after conversion to absorbance")
        return absorbance
