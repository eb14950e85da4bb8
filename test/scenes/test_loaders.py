"""Tests of the PCD/PLY loaders and the LZF codec (real PCL files when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssomotion_ros.scenes.loaders import (
    read_pcd,
    read_pcd_header,
    read_ply_labels,
    valid_mask,
    write_pcd,
    write_ply_labels,
)
from ssomotion_ros.scenes.lzf import lzf_compress, lzf_decompress

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scans" / "kinect_tabletop"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real scans not found at {DATA}")


def _mixed_cloud(n: int, rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(
        [
            ("x", "<f4"),
            ("y", "<f4"),
            ("z", "<f4"),
            ("normal", "<f4", (3,)),
            ("label", "<u4"),
            ("i8", "i1"),
            ("u16", "<u2"),
            ("i64", "<i8"),
            ("u64", "<u8"),
            ("d", "<f8"),
        ]
    )
    a = np.zeros(n, dtype=dt)
    a["x"] = rng.normal(size=n)
    a["y"] = rng.normal(size=n)
    a["z"] = rng.normal(size=n)
    a["x"][::7] = np.nan  # invalid points like a depth sensor's
    a["normal"] = rng.normal(size=(n, 3))
    a["label"] = rng.integers(0, 40, n)
    a["i8"] = rng.integers(-128, 127, n)
    a["u16"] = rng.integers(0, 65535, n)
    a["i64"] = rng.integers(-(2**62), 2**62, n)
    a["u64"] = rng.integers(0, 2**63, n, dtype=np.uint64)
    a["d"] = rng.normal(size=n)
    return a


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.names != b.dtype.names or a.shape != b.shape:
        return False
    return all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a.dtype.names)


# ----------------------------------------------------------------------------- LZF


def test_lzf_decompress_handwritten_stream():
    # literal "abc", then back reference len 5 (ctrl len field 3) offset 3 -> "abcab",
    # then literal "Z". Tokens: 0x02 'a' 'b' 'c' | (3<<5)|0, 2 | 0x00 'Z'.
    stream = bytes([2, 97, 98, 99, (3 << 5) | 0, 2, 0, 90])
    assert lzf_decompress(stream, 9) == b"abcabcabZ"


def test_lzf_long_reference_and_overlap():
    # literal "x" then back reference offset 1 of length 7 + 20 + 2 = 29 (long form).
    stream = bytes([0, ord("x"), 7 << 5, 20, 0])
    assert lzf_decompress(stream, 30) == b"x" * 30


@pytest.mark.parametrize("seed", [0, 1])
def test_lzf_roundtrip(seed):
    rng = np.random.default_rng(seed)
    parts = [
        rng.integers(0, 256, 1000, dtype=np.uint8).tobytes(),
        b"\x00" * 5000,
        np.full(300, np.nan, np.float32).tobytes(),
        rng.integers(0, 4, 777, dtype=np.uint8).tobytes(),
        np.tile(np.arange(8, dtype=np.uint8), 100).tobytes(),
    ]
    data = b"".join(parts)
    comp = lzf_compress(data)
    assert len(comp) < len(data)  # the padding runs compress
    assert lzf_decompress(comp, len(data)) == data
    assert lzf_decompress(lzf_compress(b""), 0) == b""


def test_lzf_corrupt_streams():
    with pytest.raises(ValueError, match="before the start"):
        lzf_decompress(bytes([(1 << 5) | 0, 5]), 3)
    with pytest.raises(ValueError, match="past the end"):
        lzf_decompress(bytes([10, 1, 2]), 11)
    with pytest.raises(ValueError, match="expected"):
        lzf_decompress(bytes([2, 1, 2, 3]), 10)


# ----------------------------------------------------------------------------- PCD


@pytest.mark.parametrize("data", ["ascii", "binary", "binary_compressed"])
def test_pcd_roundtrip_all_types(tmp_path, data):
    rng = np.random.default_rng(3)
    cloud = _mixed_cloud(500, rng)
    path = tmp_path / f"c_{data}.pcd"
    write_pcd(path, cloud, data=data)
    back = read_pcd(path)
    assert back.shape == (500,)
    assert back["normal"].shape == (500, 3)
    assert _equal(back, cloud)
    hdr = read_pcd_header(path)
    assert hdr.data == data and hdr.counts[3] == 3 and hdr.height == 1


@pytest.mark.parametrize("data", ["ascii", "binary", "binary_compressed"])
def test_pcd_organized_keeps_shape(tmp_path, data):
    rng = np.random.default_rng(4)
    cloud = _mixed_cloud(12 * 5, rng).reshape(5, 12)
    write_pcd(tmp_path / "o.pcd", cloud, data=data)
    back = read_pcd(tmp_path / "o.pcd")
    assert back.shape == (5, 12)
    assert _equal(back, cloud)
    assert valid_mask(back).shape == (5, 12)


def test_pcd_padding_field_dropped(tmp_path):
    header = (
        "VERSION 0.7\nFIELDS x y z _ label\nSIZE 4 4 4 1 2\nTYPE F F F U U\nCOUNT 1 1 1 4 1\n"
        "WIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\nDATA ascii\n"
        "1 2 3 0 0 0 0 7\n4 5 nan 0 0 0 0 9\n"
    )
    (tmp_path / "p.pcd").write_text(header)
    a = read_pcd(tmp_path / "p.pcd")
    assert a.dtype.names == ("x", "y", "z", "label")
    assert a["label"].tolist() == [7, 9]
    assert valid_mask(a).tolist() == [True, False]


def test_pcd_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_pcd(tmp_path / "missing.pcd")
    (tmp_path / "bad.pcd").write_text("hello world\n")
    with pytest.raises(ValueError, match="unknown header line"):
        read_pcd(tmp_path / "bad.pcd")
    hdr = "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 10\nHEIGHT 1\n"
    (tmp_path / "trunc.pcd").write_bytes((hdr + "POINTS 10\nDATA binary\n").encode() + b"\0" * 20)
    with pytest.raises(ValueError, match="binary data has 20 bytes"):
        read_pcd(tmp_path / "trunc.pcd")
    (tmp_path / "pts.pcd").write_text(hdr + "POINTS 11\nDATA ascii\n")
    with pytest.raises(ValueError, match="POINTS 11"):
        read_pcd(tmp_path / "pts.pcd")
    bad_type = hdr.replace("SIZE 4 4 4", "SIZE 4 4 2")
    (tmp_path / "t.pcd").write_text(bad_type + "POINTS 10\nDATA ascii\n")
    with pytest.raises(ValueError, match="unsupported TYPE F with SIZE 2"):
        read_pcd(tmp_path / "t.pcd")
    # corrupt compressed body
    body = np.array([4, 120], "<u4").tobytes() + bytes([(1 << 5), 200, 0, 0])
    (tmp_path / "c.pcd").write_bytes((hdr + "POINTS 10\nDATA binary_compressed\n").encode() + body)
    with pytest.raises(ValueError, match="c.pcd"):
        read_pcd(tmp_path / "c.pcd")


@needs_data
def test_real_kinect_pcd_matches_open3d():
    o3d = pytest.importorskip("open3d")
    for name, shape in (("test55.pcd", (480, 640)), ("test58.pcd", (186764,))):
        path = DATA / name
        cloud = read_pcd(path)
        assert cloud.shape == shape
        assert cloud.dtype.names == ("label", "x", "y", "z", "rgba")
        ref = o3d.io.read_point_cloud(
            str(path), remove_nan_points=False, remove_infinite_points=False
        )
        xyz = np.stack([cloud[k] for k in "xyz"], -1).reshape(-1, 3)
        np.testing.assert_allclose(np.asarray(ref.points), xyz, equal_nan=True)
        red = ((cloud["rgba"].reshape(-1) >> 16) & 255) / 255.0
        np.testing.assert_allclose(np.asarray(ref.colors)[:, 0], red, atol=1e-6)
        # labels: 0 invalid, 1-9 table, 10*k.. objects; valid points carry labels
        lab = cloud["label"]
        ok = valid_mask(cloud)
        assert set(np.unique(lab[ok] // 10).tolist()) >= {0, 2, 3}
        assert np.all(lab[~ok] == 0)
        assert lab.max() < 300


@needs_data
def test_real_pcd_rewrite_roundtrip(tmp_path):
    cloud = read_pcd(DATA / "test55.pcd")
    write_pcd(tmp_path / "r.pcd", cloud, data="binary_compressed")
    assert _equal(read_pcd(tmp_path / "r.pcd"), cloud)
    assert (tmp_path / "r.pcd").stat().st_size < cloud.nbytes


# ----------------------------------------------------------------------------- PLY


def _mesh_vertices(n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    v = np.zeros(
        n,
        dtype=[
            ("x", "<f4"),
            ("y", "<f4"),
            ("z", "<f4"),
            ("red", "u1"),
            ("green", "u1"),
            ("blue", "u1"),
            ("alpha", "u1"),
            ("label", "<u2"),
            ("objectId", "<i4"),
        ],
    )
    for k in "xyz":
        v[k] = rng.normal(size=n)
    v["red"] = rng.integers(0, 255, n)
    v["label"] = rng.integers(0, 40, n)
    v["objectId"] = rng.integers(0, 9, n)
    return v


def test_ply_binary_roundtrip_and_open3d(tmp_path):
    v = _mesh_vertices(40)
    faces = np.random.default_rng(1).integers(0, 40, (30, 3))
    write_ply_labels(tmp_path / "m.ply", v, faces)
    ply = read_ply_labels(tmp_path / "m.ply")
    assert ply.label_field == "label" and ply.instance_field == "objectId"
    np.testing.assert_array_equal(ply.labels, v["label"])
    np.testing.assert_array_equal(ply.instances, v["objectId"])
    np.testing.assert_array_equal(ply.faces, faces)
    o3d = pytest.importorskip("open3d")
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / "m.ply"))
    np.testing.assert_allclose(np.asarray(mesh.vertices), ply.points, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(mesh.triangles), faces)


def test_ply_ascii_scannet_style(tmp_path):
    text = (
        "ply\nformat ascii 1.0\ncomment scannet style\nelement vertex 4\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
        "property ushort label\nelement face 1\nproperty list uchar int vertex_indices\n"
        "end_header\n0 0 0 1 2 3 255 5\n1 0 0 1 2 3 255 5\n1 1 0 1 2 3 255 7\n0 1 0 1 2 3 255 7\n"
        "4 0 1 2 3\n"
    )
    (tmp_path / "a.ply").write_text(text)
    ply = read_ply_labels(tmp_path / "a.ply")
    assert ply.labels.tolist() == [5, 5, 7, 7]
    assert ply.instances is None
    assert ply.faces.tolist() == [[0, 1, 2], [0, 2, 3]]


def test_ply_errors(tmp_path):
    (tmp_path / "x.ply").write_text("not a ply")
    with pytest.raises(ValueError, match="not a PLY"):
        read_ply_labels(tmp_path / "x.ply")
    (tmp_path / "n.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
        "end_header\n0 0\n"
    )
    with pytest.raises(ValueError, match="lacks property 'z'"):
        read_ply_labels(tmp_path / "n.ply")
    v = _mesh_vertices(3)
    v = v[["x", "y", "z"]]
    write_ply_labels(tmp_path / "nl.ply", np.array(v.tolist(), dtype=[(k, "<f4") for k in "xyz"]))
    with pytest.raises(ValueError, match="no per-vertex label"):
        _ = read_ply_labels(tmp_path / "nl.ply").labels
