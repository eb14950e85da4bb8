"""Window-frame features <-> 69-d parameters; direction hints."""

from __future__ import annotations

import math

import pytest
import torch
from motion_helpers import random_params

from ssomotion_ros.body.skeleton import forward_kinematics
from ssomotion_ros.motion import representation as rep


def test_round_trip_is_exact_in_joint_space():
    p = random_params(4, 30, seed=1).double()
    o, y = rep.window_frame(p)
    f = rep.params_to_features(p, o, y)
    assert f.shape == (4, 30, 135)
    back = rep.features_to_params(f, o, y)
    assert torch.allclose(forward_kinematics(back), forward_kinematics(p), atol=1e-9)
    assert torch.allclose(back[..., 66:], p[..., 66:], atol=1e-12)
    assert torch.allclose(rep.features_to_joints(f, o, y), forward_kinematics(p), atol=1e-9)


def test_window_frame_is_canonical():
    p = random_params(3, 10, seed=2).double()
    o, y = rep.window_frame(p)
    f = rep.params_to_features(p, o, y)
    assert torch.allclose(f[:, 0, :2], torch.zeros(3, 2, dtype=f.dtype), atol=1e-12)
    # pelvis height is kept: transl_z + rest pelvis height
    info = rep.body_info()
    assert torch.allclose(f[:, 0, 2], p[:, 0, 68] + info.pelvis_offset[2].double(), atol=1e-6)
    local = rep.features_to_params(f)
    assert torch.allclose(rep.heading(local[:, 0]), torch.zeros(3, dtype=f.dtype), atol=1e-9)


def test_features_invariant_to_yaw_and_floor_translation():
    p = random_params(2, 8, seed=3).double()
    o, y = rep.window_frame(p)
    f = rep.params_to_features(p, o, y)
    # rotate the whole motion by 0.7 rad about the vertical through the map origin, shift it
    R = rep.yaw_matrix(torch.tensor(0.7, dtype=p.dtype))
    from ssomotion_ros.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle

    q = p.clone()
    q[..., :3] = matrix_to_axis_angle(R @ axis_angle_to_matrix(p[..., :3]))
    off = rep.body_info().pelvis_offset.double()
    pelvis = p[..., 66:] + off
    q[..., 66:] = (R @ pelvis[..., None])[..., 0] + torch.tensor([3.0, -2.0, 0.0]).double() - off
    o2, y2 = rep.window_frame(q)
    f2 = rep.params_to_features(q, o2, y2)
    assert torch.allclose(f, f2, atol=1e-9)


def test_heading_of_pure_yaw():
    p = torch.zeros(1, 69, dtype=torch.float64)
    p[0, 2] = 2.0
    assert math.isclose(float(rep.heading(p)[0]), 2.0, abs_tol=1e-9)


def test_direction_hint_by_hand():
    j = torch.zeros(2, 30, 22, 3)
    j[:, -1, 0] = torch.tensor([3.0, 4.0, 0.0])  # pelvis moves 5 m
    j[:, -1, 5] = torch.tensor([0.0, 0.3, 0.4])  # one joint moves 0.5 m
    d = rep.direction_hint(j, torch.tensor([0, 1]))  # walk, sit
    assert torch.allclose(d[0, 0], torch.tensor([0.6, 0.8, 0.0]))  # capped at 1
    assert d[0, 1:].abs().max() == 0  # walk: pelvis only
    assert torch.allclose(d[1, 5], torch.tensor([0.0, 0.3, 0.4]))  # short vectors kept
    assert torch.allclose(d[1, 0], torch.tensor([0.6, 0.8, 0.0]))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="69"):
        rep.window_frame(torch.zeros(2, 5, 68))
    with pytest.raises(ValueError, match="135"):
        rep.features_to_params(torch.zeros(2, 5, 10))
    with pytest.raises(ValueError, match="22"):
        rep.direction_hint(torch.zeros(2, 5, 21, 3), torch.zeros(2, dtype=torch.long))


def test_blend_seam_by_hand():
    f = torch.zeros(1, 12, 135)
    f[0, :5, 0] = torch.arange(5) * 0.1  # history moves 0.1 per frame
    f[0, 5:, 0] = 1.0  # the new frames jump to 1.0
    out = rep.blend_seam(f, 5, 3)
    delta = 2 * 0.4 - 0.3 - 1.0  # continuation 0.5 minus first new frame
    w = rep.seam_weights(3)
    assert torch.allclose(
        w, torch.tensor([0.5 * (1 + math.cos(math.pi * i / 4)) for i in (1, 2, 3)])
    )
    assert torch.allclose(out[0, 5:8, 0], 1.0 + w * delta)
    assert torch.equal(out[0, :5], f[0, :5]) and torch.equal(out[0, 8:], f[0, 8:])
    assert torch.equal(rep.blend_seam(f, 5, 0), f)
