"""rosbag2 (MCAP) writing and reading with our message types, no ROS needed."""

import numpy as np
import pytest

from ssomotion_ros.recording import BagWriter, make_typestore, read_bag


def test_round_trip_custom_and_standard_types(tmp_path):
    store = make_typestore()
    HumanMotion = store.types["ssomotion_ros/msg/HumanMotion"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    String = store.types["std_msgs/msg/String"]
    joints = np.arange(2 * 22 * 3, dtype=np.float32)
    msg = HumanMotion(
        header=Header(stamp=Time(sec=1, nanosec=5), frame_id="map"),
        agent_id="alice",
        request_id="r1",
        action="walk",
        fps=30.0,
        start_frame=0,
        num_frames=2,
        joint_names=["pelvis"] * 22,
        joint_positions=joints,
        smplx_params=np.zeros(2 * 69, np.float32),
        root_poses=[],
    )
    w = BagWriter(tmp_path / "bag", typestore=store)
    w.write(
        "/ssomotion/alice/motion",
        "ssomotion_ros/msg/HumanMotion",
        10,
        store.serialize_cdr(msg, "ssomotion_ros/msg/HumanMotion"),
    )
    w.write(
        "/chatter",
        "std_msgs/msg/String",
        20,
        store.serialize_cdr(String(data="hi"), "std_msgs/msg/String"),
    )
    w.close()
    assert (tmp_path / "bag" / "metadata.yaml").is_file()
    assert list((tmp_path / "bag").glob("*.mcap"))
    got = list(read_bag(tmp_path / "bag", typestore=store))
    assert [(t, ts) for t, _, ts, _ in got] == [("/ssomotion/alice/motion", 10), ("/chatter", 20)]
    hm = got[0][3]
    assert hm.agent_id == "alice" and hm.header.frame_id == "map"
    np.testing.assert_array_equal(hm.joint_positions, joints)
    assert got[1][3].data == "hi"


def test_bad_input_is_refused_and_nothing_recorded_is_lost(tmp_path):
    store = make_typestore()
    String = store.types["std_msgs/msg/String"]
    w = BagWriter(tmp_path / "bag", typestore=store)
    data = store.serialize_cdr(String(data="kept"), "std_msgs/msg/String")
    w.write("/a", "std_msgs/msg/String", 1, data)
    with pytest.raises(ValueError, match="not of the form"):
        w.write("/a", "String", 2, data)
    with pytest.raises(ValueError, match="unknown to the bag"):
        w.write("/b", "nope_msgs/msg/Nothing", 2, data)
    with pytest.raises(ValueError, match="was recorded as std_msgs/msg/String"):
        w.write("/a", "std_msgs/msg/Header", 3, data)
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write("/a", "std_msgs/msg/String", 4, data)
    assert [m.data for _, _, _, m in read_bag(tmp_path / "bag", typestore=store)] == ["kept"]
    with pytest.raises(ValueError, match="exists already"):
        BagWriter(tmp_path / "bag", typestore=store)
