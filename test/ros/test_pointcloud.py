"""PointCloud2 <-> numpy conversions, on hand-built messages (no rclpy.init needed)."""

import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")

from sensor_msgs.msg import PointCloud2, PointField  # noqa: E402

from ssomotion_ros.ros.pointcloud import (  # noqa: E402
    array_to_pointcloud2,
    pointcloud2_to_array,
)


def _msg(fields, step, data: bytes, w, h=1, row=None, big=False):
    m = PointCloud2()
    m.fields = [PointField(name=n, offset=o, datatype=t, count=c) for n, o, t, c in fields]
    m.point_step, m.width, m.height = step, w, h
    m.row_step = row if row is not None else step * w
    m.is_bigendian = big
    m.data = data
    return m


def test_roundtrip_unorganized_and_organized():
    a = np.zeros(6, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u2")])
    a["x"] = np.arange(6)
    a["label"] = [1, 2, 3, 4, 5, 6]
    m = array_to_pointcloud2(a, "map")
    assert m.width == 6 and m.height == 1 and m.point_step == 14 and m.is_dense
    b = pointcloud2_to_array(m)
    assert b.shape == (6,) and np.array_equal(b["label"], a["label"])
    org = a.reshape(2, 3)
    m2 = array_to_pointcloud2(org)
    assert (m2.height, m2.width) == (2, 3)
    b2 = pointcloud2_to_array(m2)
    assert b2.shape == (2, 3) and np.array_equal(b2["x"], org["x"])


def test_point_step_padding_and_row_padding():
    # x y z float32 at 0, 4, 8, label uint32 at 16 (PCL-style gap at 12), point_step 32
    pts = np.zeros(
        3,
        dtype={
            "names": ["x", "y", "z", "label"],
            "formats": ["<f4", "<f4", "<f4", "<u4"],
            "offsets": [0, 4, 8, 16],
            "itemsize": 32,
        },
    )
    pts["x"] = [1, 2, 3]
    pts["label"] = [7, 8, 9]
    raw = pts.tobytes()
    # two rows of 3 points, each row padded with 5 bytes
    data = raw + b"\0" * 5 + raw + b"\0" * 5
    m = _msg(
        [
            ("x", 0, PointField.FLOAT32, 1),
            ("y", 4, PointField.FLOAT32, 1),
            ("z", 8, PointField.FLOAT32, 1),
            ("label", 16, PointField.UINT32, 1),
        ],
        32,
        data,
        w=3,
        h=2,
        row=32 * 3 + 5,
    )
    arr = pointcloud2_to_array(m)
    assert arr.shape == (2, 3)
    assert arr["label"].tolist() == [[7, 8, 9], [7, 8, 9]]
    assert arr["x"][1].tolist() == [1, 2, 3]


def test_big_endian_and_count_fields():
    dt = np.dtype([("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("class", ">i2"), ("n", ">f4", (3,))])
    a = np.zeros(2, dt)
    a["x"] = [1.5, -2.0]
    a["class"] = [300, -1]
    a["n"] = [[1, 2, 3], [4, 5, 6]]
    m = array_to_pointcloud2(a)
    assert m.is_bigendian
    assert [f.count for f in m.fields] == [1, 1, 1, 1, 3]
    b = pointcloud2_to_array(m)
    assert b["x"].tolist() == [1.5, -2.0] and b["class"].tolist() == [300, -1]
    assert b["n"][1].tolist() == [4, 5, 6]
    from ssomotion_ros.sso.ingest import ingest_cloud

    c = ingest_cloud(b)
    assert c.labels.tolist() == [300, -1] and c.points[0, 0] == 1.5


def test_bad_messages_raise():
    f = [
        ("x", 0, PointField.FLOAT32, 1),
        ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1),
    ]
    with pytest.raises(ValueError, match="bytes"):
        pointcloud2_to_array(_msg(f, 12, b"\0" * 20, w=2))
    with pytest.raises(ValueError, match="point_step"):
        pointcloud2_to_array(_msg(f, 8, b"\0" * 16, w=2))
    with pytest.raises(ValueError, match="datatype"):
        pointcloud2_to_array(_msg([("x", 0, 99, 1)], 4, b"\0" * 4, w=1))
    assert pointcloud2_to_array(_msg(f, 12, b"", w=0)).shape == (0,)
    with pytest.raises(ValueError):
        array_to_pointcloud2(np.zeros((3, 3)))
