"""The roadmap's pretraining loop, as written, as the reference for ``benchmarks/throughput.py``.

Copied from the roadmap (``../shared/seed/000_18c6f39142291399.txt``) without changes to their
logic: §6.1 ``WavelengthPositionalEncoding``, §6.2 ``SpectralPerceiver``, §4.3
``MAEBlockMasker`` and §7.2 ``train_epoch`` (one spectrum at a time; the baseline-consistency
loss re-runs the encoder per sample). The roadmap never gives its ``MAEDecoder``;
:class:`MinimalDecoder` stands in for it: wavelength queries cross-attend to the latents, then
a linear head gives the value at every wavelength (the loss of ``train_epoch`` keeps the masked
ones). Batches are in-memory tensors in the roadmap's ``variable_length_collate`` format (lists
of per-spectrum tensors): no loading, no augmentation.

    python benchmarks/roadmap_reference.py [--size small] [--length 700] [--steps 2]

prints the spectra/s of a few steps (``throughput.py`` is the real benchmark).
"""

from __future__ import annotations

import argparse
import math
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn

# Model sizes matching our presets (vitnirs.model.presets): encoder only, the decoder is ours.
SIZES = {
    "small": {"d_model": 64, "n_latents": 32, "n_heads": 4, "n_cross_layers": 1, "n_self_layers": 2, "d_meta": 16},
    "base": {"d_model": 128, "n_latents": 64, "n_heads": 4, "n_cross_layers": 2, "n_self_layers": 3, "d_meta": 32},
}  # fmt: skip


# ---------------------------------------------------------------- roadmap §4.3, as written
class MAEBlockMasker:
    """Block-based masking for Masked Autoencoder pretraining.

    Creates contiguous masked regions in wavelength space,
    more realistic than IID masking for spectroscopy.
    """

    def __init__(self, mask_ratio: float = 0.7, min_block_size: int = 5, max_block_size: int = 50):
        self.mask_ratio = mask_ratio
        self.min_block_size = min_block_size
        self.max_block_size = max_block_size

    def __call__(self, seq_len: int) -> torch.Tensor:
        """Generate block mask for sequence of given length.

        Returns:
            mask: Tensor[seq_len] with 1=visible, 0=masked
        """
        mask = torch.ones(seq_len, dtype=torch.bool)
        n_mask = int(seq_len * self.mask_ratio)
        masked_count = 0

        while masked_count < n_mask:
            # Random block size
            block_size = np.random.randint(self.min_block_size, self.max_block_size + 1)
            block_size = min(block_size, n_mask - masked_count)

            # Random start position
            start = np.random.randint(0, seq_len - block_size + 1)

            # Mask the block
            mask[start : start + block_size] = False
            masked_count += block_size

        return mask

    def apply(self, x: torch.Tensor, mask_token_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply masking to spectrum.

        Args:
            x: Spectrum tensor [seq_len] or [batch, seq_len]
            mask_token_value: Value to use for masked positions

        Returns:
            x_masked: Spectrum with masked positions replaced
            mask: Boolean mask (1=visible, 0=masked)
        """
        if x.dim() == 1:
            mask = self(len(x))
            x_masked = x.clone()
            x_masked[~mask] = mask_token_value
            return x_masked, mask
        else:
            # Batch processing
            masks = torch.stack([self(x.shape[1]) for _ in range(x.shape[0])])
            x_masked = x.clone()
            x_masked[~masks] = mask_token_value
            return x_masked, masks


# ---------------------------------------------------------------- roadmap §6.1, as written
class WavelengthPositionalEncoding(nn.Module):
    """Positional encoding using real wavelength values.

    Uses log(λ) for better coverage across typical NIR ranges.
    """

    def __init__(self, d_model: int, use_log: bool = True):
        super().__init__()
        self.d_model = d_model
        self.use_log = use_log

        # Learnable scaling parameters
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, wavelengths: torch.Tensor) -> torch.Tensor:
        """
        Args:
            wavelengths: [batch, seq_len] or [seq_len] - actual wavelength values

        Returns:
            pe: [batch, seq_len, d_model] positional encodings
        """
        if wavelengths.dim() == 1:
            wavelengths = wavelengths.unsqueeze(0)

        # Optionally use log scale
        if self.use_log:
            wavelengths = torch.log(wavelengths + 1e-6)

        # Normalize
        wavelengths = (wavelengths - wavelengths.mean(dim=-1, keepdim=True)) / (
            wavelengths.std(dim=-1, keepdim=True) + 1e-6
        )
        wavelengths = wavelengths * self.scale + self.bias

        # Sinusoidal encoding
        div_term = torch.exp(
            torch.arange(0, self.d_model, 2, device=wavelengths.device) * (-math.log(10000.0) / self.d_model)
        )

        pe = torch.zeros(*wavelengths.shape, self.d_model, device=wavelengths.device)
        pe[..., 0::2] = torch.sin(wavelengths.unsqueeze(-1) * div_term)
        pe[..., 1::2] = torch.cos(wavelengths.unsqueeze(-1) * div_term)

        return pe


# ---------------------------------------------------------------- roadmap §6.2, as written
class SpectralPerceiver(nn.Module):
    """Perceiver-style encoder for variable-length spectra.

    Uses cross-attention from fixed latents to variable input tokens,
    followed by self-attention among latents.
    """

    def __init__(
        self,
        d_model: int = 128,
        n_latents: int = 64,
        n_heads: int = 4,
        n_cross_layers: int = 2,
        n_self_layers: int = 3,
        d_meta: int = 32,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.d_model = d_model

        # Input projection
        self.input_proj = nn.Linear(1, d_model)

        # Positional encoding
        self.pos_enc = WavelengthPositionalEncoding(d_model)

        # Metadata embedding (optional)
        self.meta_proj = nn.Linear(d_meta, d_model) if d_meta > 0 else None

        # Learnable latent queries
        self.latents = nn.Parameter(torch.randn(1, n_latents, d_model))

        # Cross-attention layers (latents attend to input)
        self.cross_attn_layers = nn.ModuleList(
            [
                nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
                for _ in range(n_cross_layers)
            ]
        )
        self.cross_norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(n_cross_layers)])

        # Self-attention layers (among latents)
        self.self_attn_layers = nn.ModuleList(
            [
                nn.TransformerEncoderLayer(d_model, n_heads, d_model * 4, dropout, batch_first=True)
                for _ in range(n_self_layers)
            ]
        )

        # Final layer norm
        self.final_norm = nn.LayerNorm(d_model)

    def forward(
        self,
        x: torch.Tensor,
        wavelengths: torch.Tensor,
        meta: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: [batch, seq_len] spectral intensities
            wavelengths: [batch, seq_len] wavelength values
            meta: [batch, d_meta] optional metadata embedding
            mask: [batch, seq_len] optional mask (1=visible, 0=masked)

        Returns:
            z_latents: [batch, n_latents, d_model] latent representations
            z_embed: [batch, d_model] pooled embedding
        """
        batch_size = x.shape[0]

        # Project input to d_model
        tokens = self.input_proj(x.unsqueeze(-1))  # [B, L, D]

        # Add positional encoding
        tokens = tokens + self.pos_enc(wavelengths)

        # Expand latents for batch
        latents = self.latents.expand(batch_size, -1, -1)

        # Inject metadata into latents if provided
        if meta is not None and self.meta_proj is not None:
            meta_emb = self.meta_proj(meta).unsqueeze(1)  # [B, 1, D]
            latents = latents + meta_emb

        # Cross-attention: latents attend to tokens
        for cross_attn, norm in zip(self.cross_attn_layers, self.cross_norms, strict=False):
            attn_out, _ = cross_attn(
                latents, tokens, tokens, key_padding_mask=~mask if mask is not None else None
            )
            latents = norm(latents + attn_out)

        # Self-attention among latents
        for self_attn in self.self_attn_layers:
            latents = self_attn(latents)

        latents = self.final_norm(latents)

        # Pool to single embedding (mean over latents)
        z_embed = latents.mean(dim=1)

        return latents, z_embed


# ---------------------------------------------------------------- the decoder the roadmap never gives
class MinimalDecoder(nn.Module):
    """Stand-in for the roadmap's ``MAEDecoder``: wavelength queries → latents → value.

    ``forward(z_latents [B, N, D], wavelengths [B, L], mask [B, L]) -> x_hat [B, L]``: one
    cross-attention of the wavelength queries (the roadmap's positional encoding, projected) on
    the latents, a residual LayerNorm and a linear head; every wavelength is predicted (the
    roadmap's loss then keeps the masked ones).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.1):
        super().__init__()
        self.pos_enc = WavelengthPositionalEncoding(d_model)
        self.query_proj = nn.Linear(d_model, d_model)
        self.cross_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def forward(
        self, z_latents: torch.Tensor, wavelengths: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        queries = self.query_proj(self.pos_enc(wavelengths))  # [B, L, D]
        attn_out, _ = self.cross_attn(queries, z_latents, z_latents, need_weights=False)
        return self.head(self.norm(queries + attn_out)).squeeze(-1)  # [B, L]


# ---------------------------------------------------------------- roadmap §7.2, as written
def train_epoch(model, decoder, dataloader, optimizer, masker, config, device):
    model.train()
    decoder.train()

    total_loss = 0
    for batch in dataloader:
        optimizer.zero_grad()

        losses = []
        for i in range(len(batch["x"])):
            x = batch["x"][i].to(device)
            wavelengths = batch["wavelengths"][i].to(device)
            baseline = batch["baseline"][i]

            # 1. Per-spectrum normalization
            x_norm = (x - x.mean()) / (x.std() + 1e-6)

            # 2. MAE masking
            x_masked, mask = masker.apply(x_norm)

            # 3. Forward encoder
            z_latents, z_embed = model(
                x_masked.unsqueeze(0), wavelengths.unsqueeze(0), mask=mask.unsqueeze(0)
            )

            # 4. Decode masked positions
            x_hat = decoder(z_latents, wavelengths.unsqueeze(0), mask.unsqueeze(0))

            # 5. MAE loss (only on masked positions)
            L_mae = ((x_hat.squeeze() - x_norm)[~mask] ** 2).mean()
            losses.append(L_mae)

            # 6. Baseline-consistency loss (if baseline available)
            if baseline is not None:
                baseline = baseline.to(device)
                x_corrected = x_norm - (baseline - baseline.mean()) / (baseline.std() + 1e-6)
                _, z_embed_corrected = model(
                    x_corrected.unsqueeze(0),
                    wavelengths.unsqueeze(0),
                )
                L_base = ((z_embed - z_embed_corrected) ** 2).mean()
                losses.append(config.lambda_baseline * L_base)

        # Backprop
        loss = torch.stack(losses).mean()
        loss.backward()
        optimizer.step()

        total_loss += loss.item()

    return total_loss / len(dataloader)


# ---------------------------------------------------------------- in-memory data and the harness
def smooth_spectra(n: int, length: int, seed: int = 0, lo: float = 1000.0, hi: float = 2500.0):
    """``n`` smooth synthetic absorbance spectra on a regular grid of ``length`` points.

    Returns ``(values (n, L) float64, wavelengths_nm (L,) float64, baseline (n, L) float64)``:
    a few Gaussian bands + a quadratic drift (the "baseline") + a little noise.
    """
    rng = np.random.default_rng(seed)
    wl = np.linspace(lo, hi, length)
    t = (wl - lo) / (hi - lo)
    centres = rng.uniform(lo, hi, size=(n, 6, 1))
    widths = rng.uniform(20.0, 150.0, size=(n, 6, 1))
    heights = rng.uniform(0.05, 0.6, size=(n, 6, 1))
    bands = (heights * np.exp(-0.5 * ((wl - centres) / widths) ** 2)).sum(axis=1)
    drift = (
        rng.uniform(0.1, 0.5, (n, 1))
        + rng.uniform(-0.3, 0.3, (n, 1)) * t
        + rng.uniform(-0.2, 0.2, (n, 1)) * t**2
    )
    values = bands + drift + rng.normal(0.0, 0.002, size=(n, length))
    return values, wl, drift


def make_batches(n_batches: int, batch_size: int, length: int, seed: int = 0) -> list[dict]:
    """Batches in the roadmap's ``variable_length_collate`` format, all tensors in memory."""
    values, wl, baseline = smooth_spectra(n_batches * batch_size, length, seed)
    wavelengths = torch.from_numpy(wl).float()
    out = []
    for b in range(n_batches):
        rows = range(b * batch_size, (b + 1) * batch_size)
        out.append(
            {
                "x": [torch.from_numpy(values[i]).float() for i in rows],
                "wavelengths": [wavelengths.clone() for _ in rows],
                "baseline": [torch.from_numpy(baseline[i]).float() for i in rows],
                "meta": [{} for _ in rows],
                "dataset_id": ["synthetic" for _ in rows],
            }
        )
    return out


def build_reference(size: str, device: torch.device | str = "cpu", lr: float = 3e-4, dropout: float = 0.1):
    """Encoder, decoder, AdamW, masker and config of the reference loop at one of :data:`SIZES`."""
    dims = SIZES[size]
    model = SpectralPerceiver(**dims, dropout=dropout).to(device)
    decoder = MinimalDecoder(dims["d_model"], dims["n_heads"], dropout=dropout).to(device)
    params = list(model.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    config = SimpleNamespace(lambda_baseline=0.1)
    return model, decoder, optimizer, MAEBlockMasker(0.7, 5, 50), config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--length", type=int, default=700)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    model, decoder, optimizer, masker, config = build_reference(args.size)
    batches = make_batches(args.steps + 1, args.batch_size, args.length)
    train_epoch(model, decoder, batches[:1], optimizer, masker, config, "cpu")  # warm-up
    tic = time.perf_counter()
    loss = train_epoch(model, decoder, batches[1:], optimizer, masker, config, "cpu")
    seconds = time.perf_counter() - tic
    rate = args.steps * args.batch_size / seconds
    print(f"roadmap loop, {args.size}, L={args.length}: {rate:.1f} spectra/s (loss {loss:.4f})")


if __name__ == "__main__":
    main()
