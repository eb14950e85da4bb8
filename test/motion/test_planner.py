"""Planner, approach poses and re-planning on hand-built maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from ssomotion_ros.motion.planning import (
    PathFollower,
    Planner,
    PlannerConfig,
    WalkableGrid,
    approach_pose,
    path_poses,
    plan_approach,
    point_along,
    resample_polyline,
)
from ssomotion_ros.motion.planning.grid import _los_uv, _segment_cells_uv
from ssomotion_ros.motion.planning.search import geodesic_cost, lazy_theta_star
from ssomotion_ros.sso.types import Affordance, SceneInstance

RES = 0.05


def room(h=100, w=100):
    """(H, W) occupancy of an empty room with a one-cell wall around it."""
    occ = np.zeros((h, w), dtype=bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    return occ


def min_obstacle_distance(path: np.ndarray, occ: np.ndarray, res: float, origin=(0, 0)) -> float:
    """Smallest distance (m) from densely sampled path points to occupied cell centres."""
    dense = resample_polyline(path, res / 4)
    centres = (np.argwhere(occ)[:, ::-1] + 0.5) * res + np.asarray(origin, float)
    d = np.linalg.norm(dense[:, None, :] - centres[None, :, :], axis=2)
    return float(d.min())


def test_grid_convention_and_clearance():
    occ = np.zeros((10, 20), dtype=bool)
    occ[3, 7] = True
    g = WalkableGrid(free=~occ, origin_xy=(1.0, -2.0), resolution=0.1)
    # cell (i, j) centre = origin + ((j + .5) res, (i + .5) res)
    np.testing.assert_allclose(g.cell_center([3, 7]), [1.75, -1.65])
    np.testing.assert_array_equal(g.world_to_cell([1.75, -1.65]), [3, 7])
    assert not g.is_free([1.75, -1.65]) and g.is_free([1.05, -1.95])
    assert not g.is_free([0.5, 0.0])  # off the map
    g2 = WalkableGrid.from_occupancy(occ, (0, 0), 0.1, clearance_radius=0.2)
    # Free iff centre distance >= 0.2 + 0.1/sqrt(2) = 0.2707 m.
    ii, jj = np.mgrid[0:10, 0:20]
    d = np.hypot(ii - 3, jj - 7) * 0.1
    np.testing.assert_array_equal(g2.free, d >= 0.2 + 0.1 / math.sqrt(2) - 1e-9)


def test_segment_cells_match_dense_sampling():
    rng = np.random.default_rng(3)
    for _ in range(100):
        p, q = rng.uniform(0, 12, 2), rng.uniform(0, 12, 2)
        cells = {tuple(c) for c in _segment_cells_uv(p, q).tolist()}
        t = np.linspace(0, 1, 20001)[:, None]
        pts = p + t * (q - p)
        code = np.unique(np.floor(pts[:, 1]).astype(int) * 1000 + np.floor(pts[:, 0]).astype(int))
        ref = {(int(c) // 1000, int(c) % 1000) for c in code}
        assert ref <= cells  # every touched cell reported
        assert len(cells) <= len(ref) + 2  # and only corner side cells beyond that


def test_short_segment_line_of_sight_is_exact():
    # Random short segments on random grids: the fast path agrees with the traversal.
    rng = np.random.default_rng(5)
    for _ in range(2000):
        free = rng.random((5, 5)) < 0.7
        p = rng.uniform(1.0, 3.0, 2)
        q = p + rng.uniform(-1.0, 1.0, 2)
        on_lines = rng.random() < 0.2
        if on_lines:  # exact corner passes, endpoints on cell boundaries
            p, q = np.round(p * 2) / 2, np.round(q * 2) / 2
        i, j = _segment_cells_uv(p, q).T
        fast, ref = _los_uv(free, p, q), bool(free[i, j].all())
        if on_lines:  # may only be more conservative for endpoints on grid corners
            assert not fast or ref, (p, q)
        else:
            assert fast == ref, (p, q)


def test_segment_through_corner_includes_side_cells():
    cells = {tuple(c) for c in _segment_cells_uv(np.array([0.5, 0.5]), np.array([1.5, 1.5]))}
    assert cells == {(0, 0), (1, 1), (0, 1), (1, 0)}


def test_straight_line_in_empty_room_gives_two_waypoints():
    g = WalkableGrid.from_occupancy(room(), (0, 0), RES, 0.2)
    res = Planner().plan(g, (0.7, 0.8), (4.1, 3.9))
    assert res.success, res.reason
    assert res.waypoints.shape == (2, 2)
    np.testing.assert_allclose(res.waypoints, [[0.7, 0.8], [4.1, 3.9]])
    assert res.length == pytest.approx(math.hypot(3.4, 3.1), rel=1e-9)
    spacing = np.linalg.norm(np.diff(res.path, axis=0), axis=1)
    assert np.all(spacing <= 0.1 + 1e-9) and np.all(spacing[:-1] > 0.1 - 1e-9)


def test_wall_with_door_path_goes_through_door_with_clearance():
    occ = room()
    occ[:, 50] = True  # wall at x = 2.5 m
    occ[70:86, 50] = False  # door: y in [3.5, 4.3] m
    radius = 0.2
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, radius)
    res = Planner().plan(g, (1.0, 1.0), (4.0, 1.0))
    assert res.success, res.reason
    # The path crosses the wall inside the door.
    px = res.path[:, 0] - 2.525
    cross = [k for k in range(len(px) - 1) if px[k] * px[k + 1] <= 0]
    assert cross
    for k in cross:
        assert 3.5 + radius - 0.05 <= res.path[k, 1] <= 4.3 - radius + 0.05
    # Clearance respected along the whole smoothed path (to obstacle cell centres).
    assert min_obstacle_distance(res.path, occ, RES) >= radius - 1e-6
    assert min_obstacle_distance(res.waypoints, occ, RES) >= radius - 1e-6
    # Any-angle: few corners (the inflated door jambs are round, so a handful), and
    # near the true shortest length (two straight legs via the door).
    assert len(res.waypoints) <= 8
    assert res.length < 1.05 * (math.hypot(1.5, 2.8) * 2 + 0.1)
    assert not any("snapped" in n for n in res.notes)


def test_enclosed_goal_fails_with_reason():
    occ = room()
    occ[60:80, 60] = occ[60:80, 80] = True
    occ[60, 60:81] = occ[80, 60:81] = True  # closed box
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.15)
    res = Planner().plan(g, (1.0, 1.0), (3.5, 3.5))
    assert not res.success
    assert res.reason.startswith("goal unreachable")
    assert "not connected to the start" in res.reason
    assert res.waypoints.shape == (0, 2) and math.isinf(res.length)


def test_dead_end_corridor_is_escaped():
    # U-shaped trap between start and goal: the path must go around it.
    occ = room()
    occ[30:71, 60] = True  # closed side towards the goal (+x), open towards -x
    occ[30, 40:61] = True
    occ[70, 40:61] = True
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.15)
    res = Planner().plan(g, (2.5, 2.5), (4.0, 2.5))  # start inside the U's mouth
    assert res.success, res.reason
    assert min_obstacle_distance(res.path, occ, RES) >= 0.15 - 1e-6
    assert res.path[:, 1].min() < 1.5 or res.path[:, 1].max() > 3.5  # went around


def test_off_map_and_start_in_obstacle():
    occ = room()
    occ[40:60, 40:60] = True  # 1 m block
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    p = Planner(PlannerConfig(snap_tolerance=0.5))
    res = p.plan(g, (1.0, 1.0), (7.0, 1.0))
    assert not res.success and "goal" in res.reason and "off the map" in res.reason
    # Start deep inside the block: nearest free cell > 0.5 m away -> fails with distance.
    res = p.plan(g, (2.5, 2.5), (0.5, 0.5))
    assert not res.success
    assert "start is inside an obstacle" in res.reason and "m away" in res.reason
    # Start just inside the block edge: snapped, and said so.
    res = p.plan(g, (2.05, 2.5), (0.5, 2.5))
    assert res.success, res.reason
    assert any(n.startswith("start") and "snapped" in n for n in res.notes)
    assert g.is_free(res.start_xy)
    assert np.linalg.norm(res.start_xy - [2.05, 2.5]) <= 0.5


def test_theta_star_matches_geodesic_lower_bound():
    rng = np.random.default_rng(1)
    occ = room(60, 60)
    for _ in range(15):
        i, j = rng.integers(2, 55, 2)
        occ[i : i + 5, j : j + 3] = True
    g = WalkableGrid.from_occupancy(occ, (0, 0), 1.0, 0.0)
    free = g.free
    s, t = np.array([2, 2]), np.array([57, 57])
    assert free[tuple(s)] and free[tuple(t)]
    field = geodesic_cost(free, t)
    for heur in (field, None):
        cells, _ = lazy_theta_star(free, s, t, heur)
        pts = np.asarray(cells, float)
        L = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()
        # Any-angle path is no longer than the 8-connected optimum, and not shorter
        # than the straight line.
        assert np.linalg.norm(t - s) - 1e-9 <= L <= field[tuple(s)] + 1e-9
        for a, b in zip(pts[:-1], pts[1:]):
            assert g.line_of_sight(a[::-1] + 0.5, b[::-1] + 0.5)


def test_approach_pose_chair_facing_plus_y():
    occ = room()
    occ[48:57, 46:55] = True  # chair footprint centred at (2.5, 2.6)
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    seat = Affordance("sit", np.array([2.5, 2.625, 0.45]), math.pi / 2, np.array([0.2, 0.2]))
    pose = approach_pose(seat, g, start_xy=(1.0, 1.0))
    assert pose.reachable, pose.reason
    x, y, yaw = pose.stand_pose
    assert abs(x - 2.5) < 1e-6 and y > 2.625 + 0.2 + 0.25 - 1e-6  # in front, at +y
    assert yaw == pytest.approx(math.pi / 2)  # facing +y, back to the seat
    assert g.is_free([x, y])
    np.testing.assert_allclose(pose.contact_pose, [2.5, 2.625, 0.45, math.pi / 2])
    planner = Planner()
    walk = plan_approach(planner, g, (1.0, 1.0), seat)
    assert walk.reachable and walk.plan.success
    np.testing.assert_allclose(walk.plan.path[-1], pose.stand_pose[:2])


def test_approach_pose_blocked_front_rotates_or_fails():
    occ = room()
    occ[48:57, 46:55] = True
    occ[57:80, 25:76] = True  # a wide table right in front of the chair (+y)
    occ[40:57, 25:46] = occ[40:57, 55:76] = True  # and cabinets on both sides
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    seat = Affordance("sit", np.array([2.5, 2.625, 0.45]), math.pi / 2, np.array([0.2, 0.2]))
    pose = approach_pose(seat, g, start_xy=(1.0, 1.0))
    assert not pose.reachable and "in front of the seat" in pose.reason
    # Only the front half blocked: a rotated candidate works.
    occ2 = room()
    occ2[48:57, 46:55] = True
    occ2[57:80, 40:52] = True
    g2 = WalkableGrid.from_occupancy(occ2, (0, 0), RES, 0.2)
    pose = approach_pose(seat, g2, start_xy=(1.0, 1.0))
    assert pose.reachable
    assert pose.stand_pose[1] > 2.625 and pose.stand_pose[0] > 2.5


def test_approach_pose_bed_picks_free_long_side():
    occ = room()
    occ[30:70, 20:60] = True  # bed 2.0 x 2.0... make it long along x
    occ[:] = room()
    occ[40:60, 20:80] = True  # bed: x in [1, 4], y in [2, 3]; long axis x
    occ[60:99, 20:80] = True  # wall-to-bed at +y: the +y long side is blocked
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    bed = SceneInstance(
        instance_id=1,
        label=3,
        name="bed",
        centroid=np.array([2.5, 2.5, 0.25]),
        bbox_min=np.array([1.0, 2.0, 0.0]),
        bbox_max=np.array([4.0, 3.0, 0.5]),
    )
    pose = approach_pose(bed, g, start_xy=(0.5, 0.5), kind="lie")
    assert pose.reachable, pose.reason
    x, y, yaw = pose.stand_pose
    assert y <= 2.0 - 0.25 + 1e-9 and 1.0 <= x <= 4.0  # beside the -y long side
    assert yaw == pytest.approx(-math.pi / 2)  # back to the bed
    np.testing.assert_allclose(pose.contact_pose[:3], [2.5, 2.5, 0.5])


def test_replanning_after_new_obstacle():
    occ = room()
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    planner = Planner()
    follower = PathFollower(planner, (4.0, 2.5))
    first = follower.start(g, (1.0, 2.5))
    assert first.success and len(first.waypoints) == 2
    st = follower.update((1.5, 2.5))  # no map change
    assert not st.replanned and st.progress == pytest.approx(0.5, abs=1e-6)
    # A box drops onto the path ahead.
    occ2 = occ.copy()
    occ2[40:60, 55:65] = True
    g2 = WalkableGrid.from_occupancy(occ2, (0, 0), RES, 0.2)
    st = follower.update((1.6, 2.5), g2)
    assert st.replanned and "blocked" in st.why
    assert st.plan.success
    np.testing.assert_allclose(st.plan.path[0], [1.6, 2.5])
    assert min_obstacle_distance(st.plan.path, occ2, RES) >= 0.2 - 1e-6
    # Unchanged map again: no further re-plan.
    st2 = follower.update(st.plan.path[3], g2)
    assert not st2.replanned
    # Map change away from the path does not re-plan either.
    occ3 = occ2.copy()
    occ3[5:10, 5:10] = True
    st3 = follower.update(st.plan.path[4], WalkableGrid.from_occupancy(occ3, (0, 0), RES, 0.2))
    assert not st3.replanned
    assert follower.update((3.95, 2.5)).reached


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="resolution"):
        WalkableGrid(free=np.ones((3, 3), bool), origin_xy=(0, 0), resolution=0)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        WalkableGrid(free=np.ones(3, bool), origin_xy=(0, 0), resolution=1)
    g = WalkableGrid(free=np.ones((3, 3), bool), origin_xy=(0, 0), resolution=1)
    with pytest.raises(ValueError, match="start_xy"):
        Planner().plan(g, (np.nan, 0), (1, 1))
    with pytest.raises(ValueError, match="heuristic"):
        Planner(PlannerConfig(heuristic="magic"))


def test_coerce_accepts_tuple_and_scene_like():
    free = np.ones((20, 20), bool)

    class Scene:
        def walkable_grid(self, body_radius):
            assert body_radius == 0.3
            return (free, np.zeros(2), 0.1)

    g = Planner(PlannerConfig(clearance_radius=0.3)).grid_from_scene(Scene())
    assert g.shape == (20, 20)
    assert ndimage.label(g.free)[1] == 1


def test_chair_under_table_is_approached_from_the_side():
    occ = room()
    occ[48:57, 46:55] = True  # chair footprint centred at (2.5, 2.6), facing +y
    occ[57:80, 30:70] = True  # table directly in front, 2 m wide
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    seat = Affordance("sit", np.array([2.5, 2.625, 0.45]), math.pi / 2, np.array([0.2, 0.2]))
    pose = approach_pose(seat, g, start_xy=(1.0, 1.0))
    assert pose.reachable, pose.reason
    x, y, yaw = pose.stand_pose
    # Beside the seat (90 degrees off its front), still facing the seat's front.
    assert abs(y - 2.625) < 1e-6 and abs(x - 2.5) >= 0.2 + 0.25 - 1e-6
    assert yaw == pytest.approx(math.pi / 2)


def test_instance_with_several_seats_uses_a_reachable_one():
    # A bed with an edge seat on each long side; the +y side is against a wall.
    occ = room()
    occ[40:60, 20:80] = True
    occ[60:99, 20:80] = True
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    bed = SceneInstance(
        instance_id=1,
        label=3,
        name="bed",
        centroid=np.array([2.5, 2.5, 0.25]),
        bbox_min=np.array([1.0, 2.0, 0.0]),
        bbox_max=np.array([4.0, 3.0, 0.5]),
        affordances=[
            Affordance("sit", np.array([2.5, 2.8, 0.5]), math.pi / 2, np.array([0.3, 0.2])),
            Affordance("sit", np.array([2.5, 2.2, 0.5]), -math.pi / 2, np.array([0.3, 0.2])),
        ],
    )
    pose = approach_pose(bed, g, start_xy=(0.5, 0.5), kind="sit")
    assert pose.reachable, pose.reason
    assert pose.stand_pose[1] < 2.0 and pose.stand_pose[2] == pytest.approx(-math.pi / 2)
    np.testing.assert_allclose(pose.contact_pose, [2.5, 2.2, 0.5, -math.pi / 2])
    # Both sides blocked: the reason says how many places were tried.
    occ[0:40, 20:80] = True
    g2 = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    pose = approach_pose(bed, g2, start_xy=(0.5, 0.5), kind="sit")
    assert not pose.reachable and "none of the 2 sit places" in pose.reason


def test_generated_scenes_seats_and_beds():
    """Integration with the scenes library: every sit/lie place of generated rooms either
    gets a free, reachable standing point with a collision-free walk, or a reason."""
    from ssomotion_ros.scenes.scene import generate_scene

    planner = Planner(PlannerConfig(clearance_radius=0.25))
    reached = tried = 0
    for seed in range(3):
        scene = generate_scene("a living room with a sofa, a bed, a table and two chairs", seed)
        fs = scene.free  # FreeSpace grids are indexed [ix, iy]: transpose to rows = y
        occ = np.asarray(fs.occupied).T
        grid = WalkableGrid.from_occupancy(occ, fs.origin, fs.resolution, 0.25)
        start = scene.start_pose()[:2]
        for inst in scene.instances:
            for kind in ("sit", "lie"):
                if not any(a.kind == kind for a in inst.affordances):
                    continue
                tried += 1
                pose = plan_approach(planner, grid, start, inst, kind)
                if not pose.reachable:
                    assert pose.reason
                    continue
                reached += 1
                assert pose.plan.success and grid.is_free(pose.stand_pose[:2])
                np.testing.assert_allclose(pose.plan.path[-1], pose.stand_pose[:2])
                d = min_obstacle_distance(pose.plan.path, occ, fs.resolution, fs.origin)
                assert d >= 0.25 - 1e-6
                if kind == "sit":  # never behind the seat
                    f = pose.contact_pose[3]
                    off = pose.stand_pose[:2] - pose.contact_pose[:2]
                    assert off @ [math.cos(f), math.sin(f)] >= -1e-6
    assert tried >= 12 and reached >= 0.8 * tried


def test_plans_on_a_fused_scene_model():
    """The real SSO: fuse a simulated scan, plan on ``walkable_grid``, approach poses
    from the SSO's own instances (chair faces +x, sofa faces -y, bed against the +x
    wall), metrics-style SDF queries."""
    import torch

    from ssomotion_ros.sso.scene import SceneModel
    from ssomotion_ros.sso.synthetic import room_cloud

    torch.set_num_threads(1)
    scene = SceneModel()
    scene.fuse(room_cloud(num_points=150_000))
    planner = Planner(PlannerConfig(clearance_radius=0.25))
    grid = planner.grid_from_scene(scene)
    res = planner.plan(grid, (0.6, 0.6), (5.2, 2.5))
    assert res.success, res.reason
    assert np.all(grid.is_free(res.path))
    by_name = {inst.name: inst for inst in scene.instances()}
    chair = plan_approach(planner, grid, (0.6, 0.6), by_name["chair"], "sit")
    assert chair.reachable, chair.reason
    assert chair.stand_pose[0] > 2.2 and abs(chair.stand_pose[1] - 1.5) < 0.3  # at +x
    sofa = plan_approach(planner, grid, (0.6, 0.6), by_name["sofa"], "lie")
    assert sofa.reachable and sofa.stand_pose[1] < 4.0  # in front of the sofa (-y)
    bed = plan_approach(planner, grid, (0.6, 0.6), by_name["bed"], "lie")
    assert bed.reachable, bed.reason
    assert bed.stand_pose[0] < 4.2  # the free long side, away from the wall
    assert np.all(grid.is_free(bed.plan.path)) and np.all(grid.polyline_free(bed.plan.path))


def test_search_window_falls_back_to_the_whole_map():
    # 15 m x 15 m; wall at x = 7.5 m with its only door far up at y in [13, 14] m.
    occ = room(300, 300)
    occ[:, 150] = True
    occ[260:280, 150] = False
    g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.2)
    windowed = Planner(PlannerConfig(search_window_margin=2.0))
    full = Planner(PlannerConfig(search_window_margin=math.inf))
    a = windowed.plan(g, (6.0, 1.0), (9.0, 1.0))
    b = full.plan(g, (6.0, 1.0), (9.0, 1.0))
    assert a.success and b.success
    assert a.path[:, 1].max() > 13.0  # went through the door, outside any window
    assert a.length == pytest.approx(b.length, rel=1e-9)
    # Where the window connects start and goal, the result is a valid, short path.
    c = windowed.plan(g, (1.0, 1.0), (5.0, 3.0))
    assert c.success and len(c.waypoints) == 2
    assert np.all(g.polyline_free(c.path))


def test_poses_and_lookahead():
    g = WalkableGrid.from_occupancy(room(), (0, 0), RES, 0.2)
    follower = PathFollower(Planner(), (4.0, 1.0))
    plan = follower.start(g, (1.0, 1.0))
    poses = plan.poses()
    assert poses.shape == (len(plan.path), 3)
    np.testing.assert_allclose(poses[:, 2], 0.0, atol=1e-12)  # heading +x
    np.testing.assert_allclose(follower.lookahead((1.5, 1.1), 1.0), [2.5, 1.0])
    np.testing.assert_allclose(follower.lookahead((3.8, 1.0), 1.0), [4.0, 1.0])  # clamped
    np.testing.assert_allclose(point_along(np.array([[0, 0], [1, 0], [1, 1]]), 1.5), [1, 0.5])
    assert path_poses(np.array([[0.0, 0.0], [0.0, 1.0]]))[1, 2] == pytest.approx(math.pi / 2)


def test_random_maps_paths_are_free_and_keep_clearance():
    rng = np.random.default_rng(7)
    planner = Planner()
    solved = 0
    for _ in range(15):
        occ = room(80, 80)
        for _ in range(12):
            i, j = rng.integers(1, 75, 2)
            h, w = rng.integers(2, 12, 2)
            occ[i : i + h, j : j + w] = True
        g = WalkableGrid.from_occupancy(occ, (0, 0), RES, 0.15)
        free = np.argwhere(g.free)
        for _ in range(3):
            a, b = free[rng.integers(0, len(free), 2)]
            s, t = g.cell_center(a) + rng.uniform(-0.02, 0.02, 2), g.cell_center(b)
            res = planner.plan(g, s, t)
            if g.labels[tuple(a)] != g.labels[tuple(b)]:
                assert not res.success and res.reason.startswith("goal unreachable")
                continue
            assert res.success, res.reason
            solved += 1
            np.testing.assert_allclose(res.path[0], s)
            np.testing.assert_allclose(res.path[-1], t)
            assert np.all(g.polyline_free(res.path)) and np.all(g.polyline_free(res.waypoints))
            assert min_obstacle_distance(res.path, occ, RES) >= 0.15 - 1e-6
            assert res.length >= np.linalg.norm(t - s) - 1e-9
    assert solved >= 20
