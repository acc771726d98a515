"""Batch augmentations for event frames: translate, flip, cutout, config parsing."""

import pytest
import torch

from spikeforge.data.augment import (
    Compose,
    Cutout,
    Flip,
    Translate,
    build_batch_augment,
    random_cutout,
    random_flip,
    random_translate,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _dots(b=16, t=3, c=2, h=12, w=12):
    """Each sample: one bright pixel at (5, 6), different value per time step/channel."""
    x = torch.zeros(b, t, c, h, w)
    x[:, :, :, 5, 6] = torch.arange(1, t * c + 1, dtype=torch.float32).view(t, c)
    return x


def test_translate_moves_whole_sample_consistently():
    x = _dots()
    y = random_translate(x, 3, _gen(1))
    assert y.shape == x.shape
    shifts = set()
    for b in range(x.shape[0]):
        pos = (y[b, 0, 0] != 0).nonzero()
        assert len(pos) == 1  # the dot moved, nothing else appeared
        dy, dx = pos[0, 0].item() - 5, pos[0, 1].item() - 6
        assert abs(dy) <= 3 and abs(dx) <= 3
        shifts.add((dy, dx))
        # same shift for every time step and channel, values kept
        assert torch.equal(y[b, :, :, 5 + dy, 6 + dx], x[b, :, :, 5, 6])
    assert len(shifts) > 3  # per-sample draws


def test_translate_zero_fills_no_wraparound():
    x = torch.ones(64, 1, 1, 8, 8)
    y = random_translate(x, 2, _gen(0))
    # each sample loses exactly |dy| rows and |dx| columns: ones = (8-|dy|)(8-|dx|)
    counts = y.sum((1, 2, 3, 4))
    valid = {(8 - a) * (8 - b) for a in range(3) for b in range(3)}
    assert set(counts.tolist()) <= {float(v) for v in valid}
    assert (counts < 64).any()
    assert torch.equal(random_translate(x, 0, _gen(0)), x)


def test_flip_mirrors_per_sample():
    x = _dots(b=200)
    y = random_flip(x, generator=_gen(2))
    flipped = y[:, 0, 0, 5, 12 - 1 - 6] != 0
    kept = y[:, 0, 0, 5, 6] != 0
    assert torch.equal(flipped, ~kept)
    assert 60 < flipped.sum().item() < 140  # p = 0.5 over 200 samples
    assert torch.equal(random_flip(x, 0.0, _gen(0)), x)
    assert torch.equal(random_flip(x, 1.0, _gen(0)), x.flip(-1))


def test_cutout_zeroes_one_square_per_sample():
    x = torch.ones(32, 2, 2, 20, 20)
    y = random_cutout(x, 6, _gen(3))
    for b in range(32):
        zero = y[b, 0, 0] == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) <= 6 and len(cols) <= 6
        assert zero.sum().item() == len(rows) * len(cols)  # a (clipped) square
        # same square for all steps and channels
        assert torch.equal((y[b] == 0), zero.expand(2, 2, 20, 20))
    assert (y == 0).sum().item() > 0


def test_seeded_generator_is_reproducible():
    x = torch.rand(8, 4, 2, 16, 16, generator=_gen(0))
    aug = build_batch_augment(["translate:4", "flip", "cutout:5"])
    assert isinstance(aug, Compose)
    assert torch.equal(aug(x, _gen(7)), aug(x, _gen(7)))
    assert not torch.equal(aug(x, _gen(7)), aug(x, _gen(8)))


def test_works_on_static_batches():
    x = torch.rand(4, 1, 10, 10)
    assert random_translate(x, 2, _gen()).shape == x.shape
    assert random_cutout(x, 3, _gen()).shape == x.shape
    assert random_flip(x, generator=_gen()).shape == x.shape


def test_build_batch_augment_parsing():
    assert build_batch_augment([]) is None
    assert build_batch_augment(None) is None
    assert build_batch_augment(["flip"]) == Flip(0.5)
    assert build_batch_augment(["flip:0.2"]) == Flip(0.2)
    assert build_batch_augment(["translate:4"]) == Translate(4)
    assert build_batch_augment([" cutout:8 "]) == Cutout(8)
    c = build_batch_augment(["translate:2", "flip"])
    assert c.transforms == (Translate(2), Flip())


@pytest.mark.parametrize(
    "entry, match",
    [
        ("rotate:10", "'rotate:10'"),
        ("translate", "'translate'"),
        ("translate:x", "'translate:x'.*integer"),
        ("cutout:0", "'cutout:0'"),
        ("flip:2", "'flip:2'"),
    ],
)
def test_bad_entry_named(entry, match):
    with pytest.raises(ValueError, match=match):
        build_batch_augment(["flip", entry])


def test_string_instead_of_list_rejected():
    with pytest.raises(ValueError, match="list"):
        build_batch_augment("flip")
