"""Sensor augmentation (random unit rotation and triad gain) on real DSADS windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.data.splitting import Standardizer
from components.training import TrainConfig, train_model
from components.training.augment import SensorAugment, find_triads, random_rotations


@pytest.fixture(scope="module")
def dsads_standardised(dsads_small_windows):
    ws = dsads_small_windows.select(np.arange(0, len(dsads_small_windows), 20))
    std = Standardizer.fit(ws)
    out = ws.select(np.arange(len(ws)))
    out.x = std.transform(ws.x)
    return out, std


def _physical(x: torch.Tensor, std: Standardizer) -> torch.Tensor:
    return x * torch.tensor(std.std)[:, None] + torch.tensor(std.mean)[:, None]


def _augmented(ws, std: Standardizer, n: int, seed: int, rotation_deg: float, gain_std: float):
    """The first ``n`` windows before and after augmentation, both in physical units."""
    x = torch.from_numpy(ws.x[:n])
    torch.manual_seed(seed)
    y = SensorAugment(ws.channel_names, std.mean, std.std, rotation_deg, gain_std)(x)
    return _physical(x, std), _physical(y, std)


def test_triads_follow_dsads_channel_names(dsads_small_windows):
    triads = find_triads(dsads_small_windows.channel_names)
    assert triads.units == ["torso", "right_arm", "left_arm", "right_leg", "left_leg"]
    assert len(triads.channels) == 15  # acc, gyro, mag at 5 positions
    names = dsads_small_windows.channel_names
    for tri, unit in zip(triads.channels, triads.unit_of, strict=True):
        prefixes = {names[i].rsplit("_", 1)[0] for i in tri}
        assert len(prefixes) == 1 and [names[i][-1] for i in tri] == ["x", "y", "z"]
        assert names[tri[0]].startswith(triads.units[unit] + "_")
    # channels outside a complete triad are not grouped
    assert find_triads(["acc_x", "acc_y", "temp", "gyro_x", "gyro_y", "gyro_z"]).channels == [[3, 4, 5]]


def test_random_rotations_are_rotations_within_the_angle():
    torch.manual_seed(0)
    r = random_rotations(500, 30.0, torch.device("cpu"))
    eye = torch.eye(3).expand(500, 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(500), atol=1e-5)
    angles = torch.rad2deg(torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1)))
    assert angles.max() <= 30.0 + 1e-3 and angles.max() > 25.0  # uses the whole range


def test_rotation_turns_each_unit_rigidly_in_physical_units(dsads_standardised):
    ws, std = dsads_standardised
    px, py = _augmented(ws, std, 32, seed=1, rotation_deg=45.0, gain_std=0.0)
    triads = find_triads(ws.channel_names)
    assert not torch.allclose(px, py, atol=1e-3)
    for tri in triads.channels:  # a rotation keeps every triad's magnitude (e.g. |gravity|)
        assert torch.allclose(px[:, tri].norm(dim=1), py[:, tri].norm(dim=1), rtol=1e-4, atol=1e-4)
    # acc and gyro of one unit turn by the same rotation: solve it from acc, apply it to gyro
    names = ws.channel_names
    acc = [names.index(f"torso_acc_{a}") for a in "xyz"]
    gyro = [names.index(f"torso_gyro_{a}") for a in "xyz"]
    for i in range(4):
        rot = torch.linalg.lstsq(px[i, acc].T.double(), py[i, acc].T.double()).solution.T
        assert torch.allclose((rot @ px[i, gyro].double()).float(), py[i, gyro], atol=1e-3)


def test_gravity_axis_candidate_keeps_each_units_tilt(dsads_standardised):
    """The not-adopted ``grav60`` candidate of benchmarks/augment_selection.py turns units about gravity."""
    from benchmarks.augment_selection import gravity_axis_augment

    ws, std = dsads_standardised
    x = torch.from_numpy(ws.x[:32])
    torch.manual_seed(3)
    augment = gravity_axis_augment()(ws.channel_names, std.mean, std.std, 90.0, 0.0)
    px, py = _physical(x, std), _physical(augment(x), std)
    names = ws.channel_names
    for unit in find_triads(names).units:
        acc = [names.index(f"{unit}_acc_{a}") for a in "xyz"]
        mag = [names.index(f"{unit}_mag_{a}") for a in "xyz"]
        # the window's mean acceleration (gravity) is the rotation axis, so it stays put ...
        assert torch.allclose(px[:, acc].mean(-1), py[:, acc].mean(-1), atol=1e-3)
        # ... while the unit does turn: its magnetometer heading changes, its magnitude does not
        assert not torch.allclose(px[:, mag], py[:, mag], atol=1e-2)
        assert torch.allclose(px[:, mag].norm(dim=1), py[:, mag].norm(dim=1), rtol=1e-4, atol=1e-4)
    # the protocol's random axis moves the gravity direction
    _, pr = _augmented(ws, std, 32, seed=3, rotation_deg=90.0, gain_std=0.0)
    acc = [names.index(f"torso_acc_{a}") for a in "xyz"]
    assert not torch.allclose(px[:, acc].mean(-1), pr[:, acc].mean(-1), atol=1e-2)


def test_gain_scales_triads_and_nothing_else_changes(dsads_standardised):
    ws, std = dsads_standardised
    px, py = _augmented(ws, std, 16, seed=2, rotation_deg=0.0, gain_std=0.2)
    for tri in find_triads(ws.channel_names).channels:
        ratio = py[:, tri] / px[:, tri]  # one factor per window and triad
        assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), rtol=1e-3, atol=1e-3)
    x = torch.from_numpy(ws.x[:16])
    assert torch.equal(SensorAugment(ws.channel_names, std.mean, std.std, 0.0, 0.0)(x), x)


def test_bad_augmentation_settings_are_explained(dsads_standardised):
    ws, std = dsads_standardised
    with pytest.raises(ValueError, match="standardiser has 3 means"):
        SensorAugment(ws.channel_names, std.mean[:3], std.std[:3], 10.0, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        SensorAugment(ws.channel_names, std.mean, std.std, -1.0, 0.0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(45 * 75, ws.n_classes))
    cfg = TrainConfig(epochs=1, augment_rotation_deg=10.0, progress=False)
    with pytest.raises(ValueError, match="pass train_model the standardizer"):
        train_model(model, ws, ws, cfg)


def test_augmented_training_is_deterministic(dsads_standardised):
    ws, std = dsads_standardised
    cfg = TrainConfig(
        epochs=2, batch_size=16, augment_rotation_deg=30.0, augment_gain_std=0.1, time_budget_min=None, progress=False
    )
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(45 * 75, ws.n_classes))
        losses.append([h["loss"] for h in train_model(model, ws, ws, cfg, std).history])
    assert losses[0] == losses[1]
    plain = TrainConfig(
        epochs=2, batch_size=16, augment_rotation_deg=0.0, augment_gain_std=0.0, time_budget_min=None, progress=False
    )
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(45 * 75, ws.n_classes))
    assert [h["loss"] for h in train_model(model, ws, ws, plain).history] != losses[0]
