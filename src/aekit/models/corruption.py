"""Input corruption for denoising autoencoders (Vincent et al. 2008, 2010).

Each function returns a corrupted copy of x; the clean x stays the target.
"downsample" is the lectures' "increasing the resolution of an image": trained to
undo it, any deterministic kind learns super-resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def shrink(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Images (N, C, H, W) -> (N, C, H / factor, W / factor): each factor x factor block's average."""
    return F.avg_pool2d(x, int(factor))


def downsample(x: torch.Tensor, level: float) -> torch.Tensor:
    """Images (N, C, H, W) at 1/level of their resolution, shown at the original size: each level x level
    block replaced by its average (average pooling), then every low-resolution pixel repeated over its
    block (nearest-neighbour upsampling). Deterministic; `level` divides H and W (config.check_noise_level)."""
    return shrink(x, int(level)).repeat_interleave(int(level), -2).repeat_interleave(int(level), -1)


CORRUPTIONS = {"gaussian": gaussian, "masking": masking, "salt_and_pepper": salt_and_pepper, "downsample": downsample}


def corrupt(x: torch.Tensor, noise: str, level: float) -> torch.Tensor:
    return CORRUPTIONS[noise](x, level)
