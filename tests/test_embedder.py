"""SpectralEmbedder: equal to embed_spectra, signal/unit conversion, grid errors, pickling,
scikit-learn's check_estimator and a nirs4all.run pipeline step."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import peak_spectra, tiny_checkpoint
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from vitnirs.embedder import SpectralEmbedder
from vitnirs.embedding import embed_spectra, load_encoder
from vitnirs.errors import VitnirsError

D_TINY = 32  # d_model of the "tiny" preset


def spectra(n: int = 20, L: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, L)`` float64 spectra and their ascending ``(L,)`` nm grid, 1000-2500 nm."""
    return peak_spectra(n, L, seed)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return str(tiny_checkpoint(tmp_path_factory.mktemp("tiny_run"), max_points=64))


def test_transform_equals_embed_spectra(ckpt, tmp_path, one_thread):
    X, w = spectra()
    emb = SpectralEmbedder(ckpt, wavelengths=w.tolist(), batch_size=7)
    Z = emb.fit(X).transform(X)
    assert Z.shape == (20, D_TINY) and Z.dtype == np.float64
    assert emb.n_features_in_ == 80 and emb.embedding_dim_ == D_TINY and emb.checkpoint_ == ckpt
    model, info = load_encoder(ckpt)
    np.testing.assert_allclose(Z, embed_spectra(model, X, w, info=info), atol=1e-6)  # the checkpoint's cap
    assert list(emb.get_feature_names_out()) == [f"emb_{i}" for i in range(D_TINY)]
    # the checkpoint is really used: another model gives other embeddings
    other = SpectralEmbedder(str(tiny_checkpoint(tmp_path, seed=1, max_points=64)), wavelengths=w.tolist())
    assert np.abs(other.fit_transform(X) - Z).max() > 1e-3
    # the result does not depend on the batch size
    np.testing.assert_allclose(emb.set_params(batch_size=256).fit_transform(X), Z, atol=1e-5)


def test_reflectance_and_transmittance_become_absorbance(ckpt, one_thread):
    A, w = spectra()
    ref = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(A)
    R = 10.0 ** (-A)
    for signal_type, values in [("reflectance", R), ("reflectance%", 100 * R), ("transmittance", R)]:
        Z = SpectralEmbedder(ckpt, wavelengths=w.tolist(), signal_type=signal_type).fit_transform(values)
        np.testing.assert_allclose(Z, ref, atol=1e-5, err_msg=signal_type)
    as_if_absorbance = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(R)
    assert np.abs(as_if_absorbance - ref).max() > 1e-3  # the conversion is what makes them equal
    with pytest.warns(UserWarning, match="non-positive"):
        SpectralEmbedder(ckpt, wavelengths=w.tolist(), signal_type="reflectance").fit_transform(R - 0.5)


def test_wavenumber_grid_equals_nm_grid(ckpt, one_thread):
    X, w = spectra()
    ref = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(X)
    nu = 1e7 / w  # descending cm-1 in the same column order
    Z = SpectralEmbedder(ckpt, wavelengths=nu.tolist(), wavelength_unit="cm-1").fit_transform(X)
    np.testing.assert_allclose(Z, ref, atol=1e-6)
    # the usual FT file: ascending wavenumbers, so the columns run from long to short wavelengths
    rev = SpectralEmbedder(ckpt, wavelengths=nu[::-1].tolist(), wavelength_unit="cm⁻¹")
    np.testing.assert_allclose(rev.fit_transform(X[:, ::-1]), ref, atol=1e-6)
    np.testing.assert_allclose(rev.wavelengths_nm_, w[::-1])
    misread = SpectralEmbedder(ckpt, wavelengths=nu.tolist()).fit_transform(X)  # cm-1 taken as nm
    assert np.abs(misread - ref).max() > 1e-3


def test_evenly_spaced_grid_from_first_and_last(ckpt, one_thread):
    X, w = spectra()
    ref = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(X)
    Z = SpectralEmbedder(ckpt, wavelengths={"first": 1000, "last": 2500}).fit_transform(X)
    np.testing.assert_allclose(Z, ref, atol=1e-6)
    with pytest.raises(ValueError, match="'first'"):
        SpectralEmbedder(ckpt, wavelengths={"start": 1000, "stop": 2500}).fit(X)


def test_grid_errors(ckpt):
    X, w = spectra(L=100)
    with pytest.raises(ValueError, match=r"wavelengths has 99 values but X has 100 columns"):
        SpectralEmbedder(ckpt, wavelengths=w[:-1].tolist()).fit(X)
    with pytest.raises(ValueError, match="wavelengths are missing"):
        SpectralEmbedder(ckpt).fit(X)
    dup = w.copy()
    dup[5] = dup[4]
    with pytest.raises(ValueError, match="repeated"):
        SpectralEmbedder(ckpt, wavelengths=dup.tolist()).fit(X)
    with pytest.raises(ValueError, match="positive"):
        SpectralEmbedder(ckpt, wavelengths=(w - 1500).tolist()).fit(X)
    fitted = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit(X)
    with pytest.raises(ValueError, match="99 features"):
        fitted.transform(X[:, :-1])
    with pytest.raises(NotFittedError):
        SpectralEmbedder(ckpt, wavelengths=w.tolist()).transform(X)


def test_grid_from_dataframe_columns(ckpt, one_thread):
    X, w = spectra()
    ref = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(X)
    for columns in ([f"{v:.6f}" for v in w], list(w)):
        frame = pd.DataFrame(X, columns=columns)
        np.testing.assert_allclose(SpectralEmbedder(ckpt).fit_transform(frame), ref, atol=1e-6)
    frame = pd.DataFrame(X, columns=[f"{v:.6f}" for v in w])
    frame.insert(0, "sample_id", 1.0)
    with pytest.raises(ValueError, match="column 'sample_id' is not a number"):
        SpectralEmbedder(ckpt).fit(frame)
    # column names carry no decimal mark: both are read, by the reader's parse_wavelength
    comma = pd.DataFrame(X, columns=[f"{v:.6f}".replace(".", ",") for v in w])
    np.testing.assert_allclose(SpectralEmbedder(ckpt).fit(comma).wavelengths_nm_, np.round(w, 6))


def test_mean_plus_level_pooling(ckpt, one_thread):
    """mean+level is the model's readout: its level equals the old numpy statistics of the
    spectrum (to float32 rounding) while the spectrum fits the checkpoint's cap of 64 points."""
    X, w = spectra(L=64)
    Z = SpectralEmbedder(ckpt, wavelengths=w.tolist(), pooling="mean+level").fit(X)
    out = Z.transform(X)
    assert out.shape == (20, D_TINY + 2) and Z.embedding_dim_ == D_TINY + 2
    np.testing.assert_allclose(
        out[:, :D_TINY], SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(X)
    )
    np.testing.assert_allclose(out[:, -2], X.mean(axis=1), rtol=1e-6)  # the numpy computation of before
    np.testing.assert_allclose(out[:, -1], np.log(X.std(axis=1)), rtol=1e-6)
    assert list(Z.get_feature_names_out()[-2:]) == ["level_mean", "level_log_std"]


def test_mean_plus_level_of_a_longer_spectrum_is_that_of_its_capped_points(ckpt, one_thread):
    """Above the cap (80 points, cap 64) the level is that of the 64 points the encoder reads
    (what its normalisation removed), not of all 80: documented in SpectralEmbedder."""
    from vitnirs.embedding import encoder_inputs

    X, w = spectra(L=80)
    out = SpectralEmbedder(ckpt, wavelengths=w.tolist(), pooling="mean+level").fit_transform(X)
    _, _, valid, level = encoder_inputs(X, w, 64)
    assert valid.shape == (20, 64)
    np.testing.assert_allclose(out[:, -2:], level.numpy(), rtol=1e-6)
    assert np.abs(out[:, -2] - X.mean(axis=1)).max() > 1e-4  # all 80 points give another level


@pytest.mark.parametrize(
    "params, match",
    [
        ({"pooling": "max"}, "pooling"),
        ({"pooling": "groups16"}, "pooling"),
        ({"pooling": "flat"}, "pooling"),  # retired with the point tokens
        ({"batch_size": 0}, "batch_size"),
        ({"wavelength_unit": "furlong"}, "unknown axis unit"),
        ({"signal_type": "fluorescence"}, "unknown signal type"),
        ({"device": "no-such-device"}, "not a torch device"),
    ],
)
def test_bad_parameters_fail_in_fit_not_init(ckpt, params, match):
    X, w = spectra(n=3)
    emb = SpectralEmbedder(ckpt, wavelengths=w.tolist(), **params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        emb.fit(X)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    X, w = spectra(n=3)
    with pytest.raises(VitnirsError, match="no such checkpoint"):
        SpectralEmbedder(str(tmp_path / "nope"), wavelengths=w.tolist()).fit(X)
    with pytest.raises(VitnirsError, match="neither a checkpoint"):
        SpectralEmbedder(str(tmp_path), wavelengths=w.tolist()).fit(X)


def test_default_checkpoint_works_or_says_why(one_thread):
    """``checkpoint="default"`` is the model shipped in ``vitnirs.pretrained`` (added separately)."""
    X, w = spectra(n=4)
    emb = SpectralEmbedder(wavelengths=w.tolist())
    try:
        import vitnirs.pretrained  # noqa: F401
    except ImportError:
        with pytest.raises(VitnirsError, match="no shipped model"):
            emb.fit(X)
        return
    try:
        Z = emb.fit_transform(X)
    except VitnirsError as err:  # e.g. the package is there but its weights are not (yet)
        assert str(err)
        return
    assert Z.shape == (4, emb.embedding_dim_) and np.isfinite(Z).all()


def test_pickle_clone_and_json_parameters(ckpt, one_thread):
    X, w = spectra()
    emb = SpectralEmbedder(ckpt, wavelengths={"first": 1000.0, "last": 2500.0}).fit(X)
    Z = emb.transform(X)
    state = emb.__getstate__()
    assert "_encoder" not in state and all(not isinstance(v, torch.nn.Module) for v in state.values())
    blob = pickle.dumps(emb)
    assert len(blob) < 20_000  # no weights inside (the tiny model alone is ~200 kB)
    np.testing.assert_array_equal(pickle.loads(blob).transform(X), Z)
    json.dumps(emb.get_params())  # nirs4all serialises the parameters as JSON
    fresh = clone(emb)
    assert not hasattr(fresh, "embedding_dim_") and fresh.get_params() == emb.get_params()


# Every check applies to an instance whose grid follows X's width ({"first", "last"}), except one:
SUBSET_INVARIANCE = (
    "transform of a subset equals the subset of the transform only up to float32 rounding "
    "(~1e-7, batched matmuls of another batch shape); the check demands rtol=1e-7 in float64"
)
# An explicit grid of L wavelengths only reads X with L columns; these checks feed other widths.
OTHER_WIDTH = "feeds X whose number of columns differs from len(wavelengths) (a ValueError by design)"
OTHER_WIDTH_CHECKS = [
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_estimators_dtypes",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
]


def _run_checks(estimator, expected: dict[str, str]) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, expected_failed_checks=expected, on_fail=None, on_skip=None)
    return results


@pytest.mark.parametrize(
    "wavelengths, expected",
    [
        ({"first": 1000.0, "last": 2500.0}, {"check_methods_subset_invariance": SUBSET_INVARIANCE}),
        (np.linspace(1000.0, 2500.0, 10).tolist(), dict.fromkeys(OTHER_WIDTH_CHECKS, OTHER_WIDTH)),
    ],
    ids=["first-last-grid", "explicit-grid"],
)
def test_check_estimator(ckpt, wavelengths, expected, one_thread, monkeypatch):
    # scikit-learn's checks feed X of 1-5 columns, spaced ~400 nm on a 1,000-2,500 nm grid: the
    # input contract refuses fewer than 10 points and the coverage rule spectra it cannot read
    # (tests/test_input_contract.py checks both). These checks test the estimator protocol, so
    # they run with both lifted; everything else is the estimator as shipped.
    import vitnirs.data.spectra_input as spectra_input
    import vitnirs.embedder as embedder

    monkeypatch.setattr(spectra_input, "MIN_POINTS", 1)
    monkeypatch.setattr(embedder, "check_readable", lambda *args, **kwargs: [])
    results = _run_checks(SpectralEmbedder(ckpt, wavelengths=wavelengths), expected)
    failed = [f"{r['check_name']}: {r['exception']!r}"[:300] for r in results if r["status"] == "failed"]
    assert not failed, "\n".join(failed)
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    assert len(passed) >= 20 and "check_transformer_general" in passed | set(expected)
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}  # needs SCIPY_ARRAY_API; nothing else is skipped


def test_runs_as_a_nirs4all_step(ckpt, tmp_path, monkeypatch, one_thread):
    import nirs4all
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    monkeypatch.chdir(tmp_path)  # nothing may be written here (save_artifacts=False)
    X, w = spectra(n=60, L=50)
    y = 3.0 * X[:, 20] - X[:, 40] + 0.1
    n_train = 45
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = nirs4all.run(
            pipeline=[SpectralEmbedder(ckpt, wavelengths=w.tolist(), batch_size=16), RidgeCV()],
            dataset=(X, y, {"train": n_train}),
            verbose=0,
            save_artifacts=False,
            random_state=0,
        )
    best = r.best
    assert best["partition"] == "test"
    y_pred = np.asarray(best["y_pred"], dtype=np.float64).ravel()
    assert y_pred.shape == (len(X) - n_train,) and np.isfinite(y_pred).all()
    # the step really embedded: same predictions as the scikit-learn pipeline (nirs4all stores float32)
    sk = make_pipeline(SpectralEmbedder(ckpt, wavelengths=w.tolist()), RidgeCV())
    expected = sk.fit(X[:n_train].astype(np.float32), y[:n_train]).predict(X[n_train:].astype(np.float32))
    np.testing.assert_allclose(y_pred, expected, rtol=1e-3, atol=1e-4)
    raw = RidgeCV().fit(X[:n_train], y[:n_train]).predict(X[n_train:])
    assert np.abs(raw - expected).max() > 1e-3
    assert list(tmp_path.iterdir()) == []


def test_align_moves_a_target_domain_by_its_unlabelled_mean(ckpt, one_thread):
    X, w = spectra()
    source, target = X[:12], X[12:] + 0.3  # the same kind of spectra on an offset instrument
    plain = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit(source)
    emb = SpectralEmbedder(ckpt, wavelengths=w.tolist(), align=True).fit(source)
    np.testing.assert_allclose(emb.transform(source), plain.transform(source), atol=1e-12)  # no shift yet
    np.testing.assert_allclose(emb.source_mean_, plain.transform(source).mean(0), atol=1e-12)
    reference = target[:4]  # unlabelled spectra of the target instrument, not the rows we predict
    emb.fit_domain(reference)
    expected = (
        plain.transform(target[4:]) - plain.transform(reference).mean(0) + plain.transform(source).mean(0)
    )
    np.testing.assert_allclose(emb.transform(target[4:]), expected, atol=1e-10)
    assert np.abs(emb.transform(target[4:]) - plain.transform(target[4:])).max() > 1e-4
    again = pickle.loads(pickle.dumps(emb))
    np.testing.assert_allclose(again.transform(target[4:]), expected, atol=1e-6)
    with pytest.raises(ValueError, match="align=True"):
        plain.fit_domain(reference)


def test_mean_std_readout_adds_the_spread_of_the_latents(ckpt, one_thread):
    from vitnirs.model.readout import readout

    X, w = spectra()
    mean = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(X)
    both = SpectralEmbedder(ckpt, wavelengths=w.tolist(), pooling="mean+std").fit(X)
    Z = both.transform(X)
    assert Z.shape == (len(X), 2 * D_TINY) and both.embedding_dim_ == 2 * D_TINY
    np.testing.assert_allclose(Z[:, :D_TINY], mean, atol=1e-6)  # the first half is the plain embedding
    assert (Z[:, D_TINY:] > 0).all()
    assert list(both.get_feature_names_out())[D_TINY] == "emb_std_0"
    latents = torch.randn(3, 5, 4)
    torch.testing.assert_close(readout(latents, "mean+std")[:, 4:], latents.std(dim=1, unbiased=False))
    with pytest.raises(ValueError, match="readout"):
        readout(latents, "max")


# ----------------------------------------------------------------------------- readouts
def _latents(B: int = 3, N: int = 8, D: int = 4) -> torch.Tensor:
    return torch.randn(B, N, D, generator=torch.Generator().manual_seed(0))


def test_every_readout_has_the_width_readout_dim_says():
    from vitnirs.model.readout import READOUTS, SHIPPABLE_MAX_DIM, feature_names, readout, readout_dim

    B, N, D = 3, 8, 4
    latents, level = _latents(B, N, D), torch.randn(B, 2)
    expected = {"mean": D, "mean+std": 2 * D, "mean+level": D + 2, "mean+max": 2 * D}
    expected |= {"groups4": 4 * D, "groups8": 8 * D}
    assert set(expected) == set(READOUTS)
    for kind in READOUTS:
        z = readout(latents, kind, level)
        assert (
            z.shape == (B, expected[kind]) == (B, readout_dim(kind, D)) == (B, len(feature_names(D, kind)))
        ), kind
        assert torch.isfinite(z).all(), kind
    assert readout_dim("groups8", 256) > SHIPPABLE_MAX_DIM >= readout_dim("mean+std", 256)
    with pytest.raises(ValueError, match="readout must be one of"):
        readout_dim("max", D)
    with pytest.raises(ValueError, match="readout must be one of .*got 'flat'"):  # retired (point tokens)
        feature_names(D, "flat")


def test_readout_values():
    from vitnirs.model.readout import readout

    latents, level = _latents(), torch.tensor([[1.0, -2.0], [0.5, 0.0], [3.0, -7.0]])
    mean = latents.mean(dim=1)
    torch.testing.assert_close(readout(latents), mean)
    torch.testing.assert_close(readout(latents, "mean+level", level), torch.cat([mean, level], dim=1))
    assert torch.equal(readout(latents, "mean+level", level)[:, -2:], level)
    torch.testing.assert_close(readout(latents, "mean+max")[:, 4:], latents.max(dim=1).values)
    torch.testing.assert_close(readout(latents, "mean+max")[:, :4], mean)
    # groups of known means: latent n holds the value n, so 4 groups of 2 have means .5, 2.5, 4.5, 6.5
    ramp = torch.arange(8.0)[None, :, None].expand(2, 8, 3)  # [B=2, N=8, D=3]
    torch.testing.assert_close(
        readout(ramp, "groups4"), torch.tensor([0.5, 2.5, 4.5, 6.5]).repeat_interleave(3).expand(2, 12)
    )
    torch.testing.assert_close(readout(ramp, "groups8"), torch.arange(8.0).repeat_interleave(3).expand(2, 24))
    # N not a multiple of G: token r of n in group floor(r·G/n) (10 tokens in 4 groups: 3, 2, 3, 2)
    ten = torch.arange(10.0)[None, :, None]
    torch.testing.assert_close(readout(ten, "groups4").flatten(), torch.tensor([1.0, 3.5, 6.0, 8.5]))


def test_readout_errors_name_the_problem():
    from vitnirs.model.readout import readout

    latents = _latents(N=5)
    with pytest.raises(ValueError, match="readout must be one of .*got 'max'"):
        readout(latents, "max")
    with pytest.raises(ValueError, match="'mean\\+level' needs the level"):
        readout(latents, "mean+level")
    with pytest.raises(ValueError, match=r"needs the level \(B, 2\) = \(3, 2\) .*got \(3, 3\)"):
        readout(latents, "mean+level", torch.zeros(3, 3))


def test_every_readout_is_a_config_choice_and_a_pooling(ckpt):
    from typing import get_args

    from vitnirs.config import EvaluationConfig
    from vitnirs.embedding import POOLINGS, with_readout
    from vitnirs.model.readout import READOUTS

    assert get_args(EvaluationConfig.model_fields["readout"].annotation) == READOUTS
    assert ("auto", *READOUTS) == POOLINGS  # auto: the checkpoint's own readout
    _, info = load_encoder(ckpt)
    for kind in READOUTS:
        assert with_readout(info, kind).readout == kind
    with pytest.raises(ValueError, match="readout must be one of"):
        with_readout(info, "groups16")


@pytest.mark.parametrize("pooling", ["mean", "mean+std", "mean+level", "mean+max", "groups4", "groups8"])
def test_every_pooling_gives_as_many_columns_as_names(ckpt, pooling, one_thread):
    from vitnirs.model.readout import feature_names, readout_dim

    X, w = spectra(n=5)
    emb = SpectralEmbedder(ckpt, wavelengths=w.tolist(), pooling=pooling).fit(X)
    Z = emb.transform(X)
    names = emb.get_feature_names_out()
    assert Z.shape == (5, emb.embedding_dim_) == (5, len(names)) == (5, readout_dim(pooling, D_TINY))
    assert len(set(names)) == len(names) and names[0] == ("emb_g0_0" if "groups" in pooling else "emb_0")
    assert list(feature_names(D_TINY, pooling)) == list(names)
    if pooling in ("mean+std", "mean+max", "mean+level"):  # the mean first, as the plain embedding
        plain = SpectralEmbedder(ckpt, wavelengths=w.tolist()).fit_transform(X)
        np.testing.assert_allclose(Z[:, :D_TINY], plain, atol=1e-6)
    again = pickle.loads(pickle.dumps(emb))
    assert list(again.get_feature_names_out()) == list(names)
    np.testing.assert_allclose(again.transform(X), Z, atol=1e-6)
