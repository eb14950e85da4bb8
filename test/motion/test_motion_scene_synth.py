"""Stage-2 box rooms: analytic tri-planes equal the voxel projection; no collisions."""

from __future__ import annotations

import numpy as np
import torch

from ssomotion_ros.motion.scene_synth import (
    BoxSceneSampler,
    GridSpec,
    box_label_maps,
    boxes_to_grid,
    label_maps_to_scene,
    triplanes_from_labels,
)


def _joints():
    j = np.zeros((30, 22, 3))
    j[..., 2] = np.linspace(0.05, 1.6, 22)
    j[..., 0] = np.linspace(0, 1.0, 30)[:, None]
    return j


def test_analytic_maps_equal_voxel_projection():
    s = BoxSceneSampler(16, use_vocabulary=False, seed=3)
    for _ in range(5):
        r, lab = s.box_indices(_joints(), 1)
        ref = triplanes_from_labels(boxes_to_grid(r, lab, s.grid)[None], s.grid, s.table, s.palette)
        m = box_label_maps(r, lab, s.grid)
        fast = label_maps_to_scene(m[None, 0].long(), m[None, 1], s.table, s.palette)
        assert torch.equal(ref.mask, fast.mask)
        assert torch.allclose(ref.depth, fast.depth)
        assert torch.equal(ref.semantic, fast.semantic)


def test_projection_by_hand():
    g = GridSpec(size=(11, 11, 9), center_height=0.16, z_plane_offset=2)
    ranges = np.array([[[8, 9], [0, 10], [0, 8]]])  # a wall at i = 8..9 (+x), full height
    labels = np.array([7])
    m = box_label_maps(ranges, labels, g, size=11)
    # x+ map, image [k, j]: centre plane i = (11 + 1) // 2 - 1 = 5, wall 3 voxels ahead
    assert torch.allclose(m[1, 0, :9], torch.full((9, 11), 3 * 0.04))
    assert (m[0, 0, :9] == 7).all() and (m[0, 0, 9:] == -1).all()  # rows 9, 10 padding
    assert (m[0, 1] == -1).all()  # nothing behind
    # z map, image [j, i]: plane k = (9 + 1) // 2 - 1 + 2 = 6, the wall reaches it: depth 0
    assert (m[0, 4][:, 8:10] == 7).all() and (m[0, 4][:, :8] == -1).all()
    assert torch.allclose(m[1, 4][:, 8:10], torch.zeros(11, 2))


def test_boxes_keep_clear_of_the_body_and_floor_is_seen():
    s = BoxSceneSampler(16, use_vocabulary=False, seed=0, margin=0.15)
    j = _joints()
    cs = [s.grid.centers(a) for a in range(3)]
    for _ in range(10):
        r, lab = s.box_indices(j, 0)  # walk: no support box
        for (x, y, z), _l in zip(r[1:], lab[1:]):
            lo = np.array([cs[0][x[0]], cs[1][y[0]], cs[2][z[0]]])
            hi = np.array([cs[0][x[1]], cs[1][y[1]], cs[2][z[1]]])
            inside = np.all((j.reshape(-1, 3) > lo - 0.1) & (j.reshape(-1, 3) < hi + 0.1), axis=1)
            assert not inside.any()
    sc = s(np.stack([j, j]), np.array([0, 1]))
    assert sc.depth.shape == (2, 5, 101, 101) and sc.semantic.shape == (2, 5, 16, 101, 101)
    assert sc.mask[:, 4].all()  # the floor is under every pixel of the z map


def test_sit_window_gets_a_seat():
    s = BoxSceneSampler(16, use_vocabulary=False, seed=0)
    j = _joints()
    j[:, 0, 2] = 0.5  # pelvis low: sitting
    r, lab = s.box_indices(j, 1)
    assert lab[1] == 5  # chair right after the floor
