"""Input corruption for denoising autoencoders (Vincent et al. 2008, 2010).

Each function returns a corrupted copy of x; the clean x stays the target.
"""

from __future__ import annotations

import torch


def gaussian(x: torch.Tensor, level: float) -> torch.Tensor:
    """Additive isotropic Gaussian noise with standard deviation `level`."""
    return x + level * torch.randn_like(x)


def masking(x: torch.Tensor, level: float) -> torch.Tensor:
    """Masking noise: each feature set to 0 with probability `level` (dropout on the input, unscaled)."""
    return x * (torch.rand_like(x) >= level)


def salt_and_pepper(x: torch.Tensor, level: float) -> torch.Tensor:
    """A fraction `level` of features set to the minimum or maximum (0 or 1) with equal chance."""
    hit = torch.rand_like(x) < level
    salt = (torch.rand_like(x) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)


CORRUPTIONS = {"gaussian": gaussian, "masking": masking, "salt_and_pepper": salt_and_pepper}


def corrupt(x: torch.Tensor, noise: str, level: float) -> torch.Tensor:
    return CORRUPTIONS[noise](x, level)
