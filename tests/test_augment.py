"""Training augmentation: seeded, shape-preserving, and it does move and reshape digits."""

import torch

from convlens.model.augment import AugmentConfig, augment


def batch() -> torch.Tensor:
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a bar, like a 1
    return x


def test_same_seed_same_batch_and_different_seed_different_batch():
    cfg = AugmentConfig()
    a = augment(batch(), cfg, torch.Generator().manual_seed(1))
    b = augment(batch(), cfg, torch.Generator().manual_seed(1))
    c = augment(batch(), cfg, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (8, 1, 28, 28) and a.min() >= 0 and a.max() <= 1


def test_zero_ranges_change_nothing():
    cfg = AugmentConfig(0, 0, 0, 0, 0, 0)
    x = batch()
    assert torch.allclose(augment(x, cfg, torch.Generator().manual_seed(0)), x, atol=1e-5)


def test_shift_moves_the_centre_of_mass_within_its_bound():
    cfg = AugmentConfig(max_rotation_deg=0, max_scale=0, max_shift_px=2.5, max_shear_deg=0, p_thicken=0, p_thin=0)
    out = augment(batch(), cfg, torch.Generator().manual_seed(3))
    cols = torch.arange(28.0)
    com = (out[:, 0].sum(1) * cols).sum(1) / out[:, 0].sum((1, 2))
    moved = (com - 13.5).abs()
    assert moved.max() <= 2.6 and moved.max() > 0.5


def test_thickening_adds_ink_and_thinning_removes_it():
    x = batch()
    thick = augment(x, AugmentConfig(0, 0, 0, 0, p_thicken=1.0, p_thin=0), torch.Generator().manual_seed(0))
    thin = augment(x, AugmentConfig(0, 0, 0, 0, p_thicken=0, p_thin=1.0), torch.Generator().manual_seed(0))
    assert thick.sum() > x.sum() * 1.2 and thin.sum() < x.sum() * 0.9
