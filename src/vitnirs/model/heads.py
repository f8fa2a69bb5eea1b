"""The fine-tuning head: the embedding standardised with train-row statistics, then a linear map.

The embeddings of different spectra differ by small amounts around a large common part (what
ridge on the frozen embedding sees after its StandardScaler): without the standardisation a
head starts blind to them. A LayerNorm instead would mix the features of one spectrum.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["StandardisedLinearHead"]


class StandardisedLinearHead(nn.Module):
    """embedding (B, d_in) → ``(z - mean) / std`` → Linear → predictions (B, n_out).

    ``mean`` and ``std`` are buffers (saved with the head, never trained); :meth:`fit_scale`
    sets them from embeddings ``(n, d_in)``, std floored at 1e-8.
    """

    def __init__(self, d_in: int, n_out: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("std", torch.ones(d_in))
        self.linear = nn.Linear(d_in, n_out)

    @torch.no_grad()
    def fit_scale(self, z: np.ndarray | torch.Tensor) -> StandardisedLinearHead:
        z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        self.mean.copy_(z.mean(0))
        self.std.copy_(torch.from_numpy(np.maximum(z.numpy().std(0), 1e-8).astype(np.float32)))
        return self

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear((embedding - self.mean) / self.std)
