"""Batched, seeded augmentation so the network tolerates how people write.

Random rotation, scale, shift and shear as one affine warp per image (grid_sample on
the whole batch, no per-image Python), and occasional stroke thickening or thinning.
Everything draws from the caller's generator, so a seed fixes every batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation_deg: float = 10.0
    max_scale: float = 0.10  # zoom in [1 - s, 1 + s]
    max_shift_px: float = 2.5
    max_shear_deg: float = 5.0
    p_thicken: float = 0.1
    p_thin: float = 0.05

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _uniform(n: int, bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * 2 - 1) * bound


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """x: (B, 1, H, W) in [0, 1], ink = 1 on a 0 background."""
    b, _, h, w = x.shape
    angle = _uniform(b, math.radians(cfg.max_rotation_deg), gen)
    shear = _uniform(b, math.radians(cfg.max_shear_deg), gen)
    scale = 1 + _uniform(b, cfg.max_scale, gen)
    # affine_grid maps output -> input coordinates in [-1, 1]: one pixel is 2/size
    tx = _uniform(b, cfg.max_shift_px * 2 / w, gen)
    ty = _uniform(b, cfg.max_shift_px * 2 / h, gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.empty(b, 2, 3)
    theta[:, 0, 0] = cos / scale
    theta[:, 0, 1] = (-sin + torch.tan(shear) * cos) / scale
    theta[:, 0, 2] = tx
    theta[:, 1, 0] = sin / scale
    theta[:, 1, 1] = cos / scale
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    if cfg.p_thicken or cfg.p_thin:
        r = torch.rand(b, generator=gen).view(b, 1, 1, 1)
        thick = F.max_pool2d(x, 3, stride=1, padding=1)
        thin = -F.max_pool2d(-x, 2, stride=1, padding=0)
        thin = F.pad(thin, (0, 1, 0, 1))
        x = torch.where(r < cfg.p_thicken, 0.5 * (x + thick), x)
        x = torch.where((r >= cfg.p_thicken) & (r < cfg.p_thicken + cfg.p_thin), thin, x)
    return x
