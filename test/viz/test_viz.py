"""Rigidly skinned body mesh and offscreen pictures (PNG, GIF)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from ssomotion_ros.body.skeleton import JOINT_NAMES, forward_kinematics_np
from ssomotion_ros.viz.body_mesh import _nearest_bone, shared_body_mesh
from ssomotion_ros.viz.render import (
    RenderConfig,
    SceneRenderer,
    SceneView,
    tracks_from_windows,
)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    return shared_body_mesh(300, str(tmp_path_factory.mktemp("mesh")))


def test_nearest_bone_reference():
    rest = forward_kinematics_np(np.zeros(69)).astype(np.float64)
    hip, knee, head = (JOINT_NAMES.index(n) for n in ("left_hip", "left_knee", "head"))
    mid_thigh = (rest[hip] + rest[knee]) / 2 + [0.03, 0.0, 0.0]
    above_head = rest[head] + [0.0, 0.0, 0.12]
    np.testing.assert_array_equal(
        _nearest_bone(np.array([mid_thigh, above_head]), rest), [hip, head]
    )


def test_mesh_pose(mesh):
    rest = mesh.pose(np.zeros(69))
    np.testing.assert_allclose(rest, mesh.rest_vertices, atol=1e-5)
    assert rest[:, 2].min() == pytest.approx(0.0, abs=0.05) and 1.5 < rest[:, 2].max() < 1.9
    # translation and yaw move the mesh rigidly
    p = np.zeros(69)
    p[2] = math.pi / 2
    p[66:69] = [1.0, 2.0, 0.0]
    v = mesh.pose(p)
    pel = forward_kinematics_np(np.zeros(69))[0]
    rel = rest - pel
    expect = np.stack([-rel[:, 1], rel[:, 0], rel[:, 2]], 1) + pel + [1.0, 2.0, 0.0]
    np.testing.assert_allclose(v, expect, atol=1e-5)
    # bending the left knee moves only vertices below it
    knee = JOINT_NAMES.index("left_knee")
    p = np.zeros(69)
    p[3 * knee : 3 * knee + 3] = [1.2, 0, 0]
    moved = np.linalg.norm(mesh.pose(p) - rest, axis=1) > 1e-6
    assert (
        moved.any() and rest[moved, 2].max() < forward_kinematics_np(np.zeros(69))[knee, 2] + 0.06
    )
    assert mesh.triangles(p).shape == (3 * len(mesh.faces), 3)
    assert mesh.pose(np.zeros((4, 69))).shape == (4, mesh.num_vertices, 3)
    with pytest.raises(ValueError, match="69"):
        mesh.pose(np.zeros(68))


def test_mesh_matches_skinned_mannequin(mesh):
    """Rigid skinning of the decimated mesh stays close to the full skinned figure."""
    from scipy.spatial import cKDTree

    from ssomotion_ros.body.mannequin import MannequinMesh

    p = np.zeros(69)
    for name, aa in [("left_hip", [-0.5, 0, 0]), ("right_knee", [0.9, 0, 0]),
                     ("left_shoulder", [0, 0, -1.0])]:  # fmt: skip
        j = JOINT_NAMES.index(name)
        p[3 * j : 3 * j + 3] = aa
    full, _ = MannequinMesh("wooden").mesh(p)
    d, _ = cKDTree(full).query(mesh.pose(p))
    assert np.median(d) < 0.01 and np.percentile(d, 95) < 0.04


def _view(cfg):
    rng = np.random.default_rng(1)
    floor = np.c_[rng.uniform(0, 4, (3000, 2)), np.zeros(3000)]
    box = rng.uniform([2.5, 2.5, 0], [3.5, 3.5, 0.8], (800, 3))
    ceiling = np.c_[rng.uniform(0, 4, (200, 2)), np.full(200, 2.5)]
    pts = np.concatenate([floor, box, ceiling])
    rgb = np.concatenate(
        [np.full((3000, 3), 150), np.full((800, 3), [30, 30, 200]), np.full((200, 3), 90)]
    ).astype(np.uint8)
    pri = np.r_[np.zeros(3000, bool), np.ones(800, bool), np.zeros(200, bool)]
    boxes = [
        ("table", np.array([2.5, 2.5, 0]), np.array([3.5, 3.5, 0.8])),
        ("wall", np.zeros(3), np.ones(3)),
    ]
    return SceneView.from_arrays(pts, rgb, boxes, cfg, priority=pri)


def test_scene_view_subsampling_and_errors():
    cfg = RenderConfig(max_points=1000)
    v = _view(cfg)
    assert len(v.points) == 1000 and v.points[:, 2].max() <= cfg.cut_height
    blue = np.all(np.isclose(v.colors, [30 / 255, 30 / 255, 200 / 255]), axis=1)
    assert blue.sum() >= 500  # objects first: at least half of the budget
    assert [b[0] for b in v.boxes] == ["table"]  # walls are not boxed
    with pytest.raises(ValueError, match="one colour each"):
        SceneView.from_arrays(np.zeros((3, 3)), np.zeros((2, 3)), [])
    for bad in (dict(view="side"), dict(body="blob"), dict(gif_fps=0), dict(color_by="x")):
        with pytest.raises(ValueError):
            RenderConfig(**bad)


def _walk(n=30):
    p = np.zeros((n, 69))
    p[:, 66] = np.linspace(0.5, 2.0, n)
    p[:, 67] = 1.0
    return p


@pytest.mark.parametrize("body", ["mesh", "skeleton"])
def test_png_shows_body_and_paths(tmp_path, body, mesh):
    cfg = RenderConfig(width_px=320, height_px=240, max_points=1500, body=body, mesh_faces=300)
    r = SceneRenderer(_view(cfg), cfg)
    r._mesh = mesh
    track = _walk()
    out = r.render_png(
        tmp_path / "a.png", {"alice": track[-1]}, {"alice": track[:, 66:68] + [0, 0.05]},
        {"alice": track[:, 66:68]}, {"alice": "walk to the table"},
    )  # fmt: skip
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape == (240, 320, 3)
    orange = np.abs(img - [230, 115, 38]).max(axis=2) < 60  # alice's colour (and shades)
    assert orange.sum() > 30


def test_gif_frames(tmp_path, mesh):
    cfg = RenderConfig(width_px=200, height_px=160, max_points=800, gif_fps=10)
    r = SceneRenderer(_view(cfg), cfg)
    r._mesh = mesh
    out = r.render_gif(tmp_path / "m.gif", {"alice": _walk(30), "bob": _walk(15)}, progress=False)
    gif = Image.open(out)
    assert gif.n_frames == 10  # 1 s of motion at 10 GIF frames per second
    gif.seek(0)
    first = np.asarray(gif.convert("RGB")).astype(int)
    gif.seek(9)
    last = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(first - last).sum() > 0  # the bodies moved
    with pytest.raises(ValueError, match="tracks is empty"):
        r.render_gif(tmp_path / "x.gif", {})


def test_tracks_from_windows():
    from ssomotion_ros.synthesis.types import MotionWindow

    def w(agent, start, n):
        p = np.zeros((n, 69), np.float32)
        p[:, 66] = start + np.arange(n)
        return MotionWindow(
            agent, "r", ["walk"] * n, start, p, forward_kinematics_np(p), np.zeros((n, 7))
        )

    tr = tracks_from_windows([w("a", 0, 30), w("b", 0, 5), w("a", 30, 10)])
    assert tr["a"].shape == (40, 69) and tr["b"].shape == (5, 69)
    np.testing.assert_array_equal(tr["a"][:, 66], np.arange(40))


def test_smplx_display_mesh(tmp_path):
    """With (synthetic) SMPL-X model files the display mesh is the user's body, decimated."""
    pytest.importorskip("smplx")
    from body_helpers import write_synthetic_smplx

    from ssomotion_ros.viz.body_mesh import SmplxDisplayMesh

    write_synthetic_smplx(tmp_path)
    m = SmplxDisplayMesh(tmp_path, target_faces=200)
    assert len(m.faces) <= 200 and m.faces.max() < m.num_vertices
    rest = m.pose(np.zeros(69))
    p = np.zeros(69)
    p[66:69] = [1.0, -2.0, 0.0]
    np.testing.assert_allclose(m.pose(p), rest + [1.0, -2.0, 0.0], atol=1e-4)
    assert m.triangles(p).shape == (3 * len(m.faces), 3)
    assert m.pose(np.zeros((2, 69))).shape == (2, m.num_vertices, 3)
    with pytest.raises((FileNotFoundError, ValueError)):
        SmplxDisplayMesh(tmp_path / "nowhere")


def test_render_scene_and_motion_from_a_scene_model(tmp_path):
    """End to end: a generated room fused into a SceneModel, a baseline walk, PNG + GIF."""
    from pathlib import Path

    cmu = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "cmu"
    if not (cmu / "INDEX.tsv").is_file():
        pytest.skip(f"CMU mocap data not found at {cmu}")
    import torch

    from ssomotion_ros.language import Goal
    from ssomotion_ros.synthesis.baseline import BaselineSynthesizer
    from ssomotion_ros.synthesis.scene_source import scene_model_from_prompt
    from ssomotion_ros.synthesis.types import BodyState
    from ssomotion_ros.viz.render import render_scene_and_motion

    torch.set_num_threads(1)
    model, scene = scene_model_from_prompt("a bedroom with a bed, a desk and a chair")
    bed = next(i for i in model.instances() if i.name == "bed")
    target = next(a for a in bed.affordances if a.kind == "approach").position
    goal = Goal("walk", None, None, target, 0.2, None, np.zeros(3), 1.0, "")
    wins = list(
        BaselineSynthesizer().stream(goal, model, BodyState(*scene.start_pose()), None, "alice")
    )
    cfg = RenderConfig(width_px=240, height_px=180, max_points=1500, gif_fps=5)
    png, gif = render_scene_and_motion(
        model, wins, tmp_path / "s.png", tmp_path / "m.gif", cfg, {"alice": "walk to the bed"}
    )
    assert Image.open(png).size == (240, 180)
    frames = sum(w.num_frames for w in wins)
    assert Image.open(gif).n_frames == len(range(0, frames, 6))
