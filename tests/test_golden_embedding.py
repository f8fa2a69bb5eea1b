"""Golden fixture: a fixed tiny checkpoint, fixed spectra and the embeddings they gave.

``tests/fixtures/golden_embed`` was written once (untrained ``tiny`` model, seed 3, point cap
64; seven 150-point spectra) by the code of main 00929fd. Refactors of the checkpoint format,
the batch contract or ``embed_spectra`` must give these embeddings bit for bit: a change here
is a change of every user's numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitnirs.embedding import embed_spectra, load_encoder

GOLDEN = Path(__file__).parent / "fixtures" / "golden_embed"


def test_embed_spectra_matches_the_golden_fixture(one_thread):
    stored = np.load(GOLDEN / "golden.npz")
    model, info = load_encoder(GOLDEN)
    X, w = stored["X"], stored["wavelengths_nm"]
    np.testing.assert_array_equal(embed_spectra(model, X, w, info=info, batch_size=4), stored["Z"])
    np.testing.assert_array_equal(
        embed_spectra(model, X, w, info=info, batch_size=4, meta=stored["meta"]), stored["Z_meta"]
    )
    np.testing.assert_array_equal(embed_spectra(model, X, w, max_points=0), stored["Z_nocap"])


def test_the_checkpoint_cap_is_what_changes_the_golden_embedding(one_thread):
    """The fixture can fail: without the checkpoint's cap of 64 points the embedding differs."""
    stored = np.load(GOLDEN / "golden.npz")
    model, _ = load_encoder(GOLDEN)
    Z = embed_spectra(model, stored["X"], stored["wavelengths_nm"], max_points=0)
    assert np.abs(Z - stored["Z"]).max() > 1e-3


def test_the_untrained_control_is_a_fresh_build_of_the_same_seed():
    """The golden checkpoint holds an untrained tiny model of seed 3: the control of seed 3 is
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
    fresh = build_mae("tiny")
    for k, v in loaded.state_dict().items():
        assert torch.equal(same.state_dict()[k], v), k
        assert torch.equal(other.state_dict()[k], fresh.state_dict()[k]), k
    assert any(not torch.equal(other.state_dict()[k], v) for k, v in loaded.state_dict().items())
    assert not same.training
