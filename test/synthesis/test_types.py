"""MotionWindow / BodyState validation and end_state."""

import math

import numpy as np
import pytest

from ssomotion_ros.body.skeleton import forward_kinematics_np
from ssomotion_ros.synthesis.types import BodyState, MotionWindow, end_state, heading_of


def _window(t=4, **kw):
    p = np.zeros((t, 69), np.float32)
    p[:, 2] = math.pi / 2  # yaw 90 deg
    p[:, 66] = np.arange(t)
    args = dict(
        agent_id="a",
        request_id="r",
        actions=["walk"] * t,
        start_frame=0,
        params=p,
        joints=forward_kinematics_np(p),
        root_poses=np.zeros((t, 7)),
    )
    args.update(kw)
    return MotionWindow(**args)


def test_window_shapes_and_end_state():
    w = _window(start_frame=30, posture="sitting", stand_xy=[1.0, 2.0])
    assert w.num_frames == 4 and w.end_frame == 34
    assert w.params.dtype == np.float32 and w.joints.shape == (4, 22, 3)
    st = end_state(w)
    assert st.posture == "sitting" and np.allclose(st.stand_xy, [1, 2])
    assert st.x == pytest.approx(float(w.joints[-1, 0, 0]))
    assert st.yaw == pytest.approx(math.pi / 2, abs=1e-6)
    assert np.allclose(st.params, w.params[-1])


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(params=np.zeros((4, 68))), "params must be"),
        (dict(joints=np.zeros((4, 21, 3))), "joints must be"),
        (dict(root_poses=np.zeros((4, 6))), "root_poses must be"),
        (dict(actions=["walk"] * 3), "actions must be"),
        (dict(start_frame=-1), "start_frame"),
        (dict(posture="flying"), "posture"),
    ],
)
def test_window_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _window(**kw)


def test_body_state_errors():
    with pytest.raises(ValueError, match="finite"):
        BodyState(float("nan"), 0, 0)
    with pytest.raises(ValueError, match="posture"):
        BodyState(0, 0, 0, posture="kneeling")
    with pytest.raises(ValueError, match="69"):
        BodyState(0, 0, 0, params=np.zeros(3))


def test_heading_of_standing_and_lying():
    p = np.zeros(69)
    p[2] = 0.7
    assert heading_of(p) == pytest.approx(0.7)
    # lying on the back: pelvis pitched -90 deg about y, so its forward axis points up and
    # its up axis (towards the head) points along -x
    p = np.zeros(69)
    p[1] = -math.pi / 2
    assert abs(heading_of(p)) == pytest.approx(math.pi, abs=1e-6)
