import numpy as np
import pytest

from ssomotion_ros.sso.ingest import ingest_cloud, make_cloud, unpack_rgb
from ssomotion_ros.sso.vocabulary import Vocabulary


def _base(n=5, extra=()):
    dt = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), *extra]
    a = np.zeros(n, dtype=dt)
    a["x"] = np.arange(n)
    a["y"] = 1.0
    a["z"] = 2.0
    return a


@pytest.mark.parametrize("name", ["label", "semantic_label", "class", "ring"])
@pytest.mark.parametrize("dtype", ["u1", "<u2", "<i2", "<u4", "<i4", "<i8"])
def test_integer_label_fields(name, dtype):
    a = _base(4, [(name, dtype)])
    a[name] = [0, 3, 5, 7]
    c = ingest_cloud(a)
    assert c.labels.dtype == np.int64 and c.labels.tolist() == [0, 3, 5, 7]
    assert c.layout == f"label:{name}"
    assert c.points.dtype == np.float32 and c.points.shape == (4, 3)
    assert (c.instance == -1).all() and c.rgb is None


@pytest.mark.parametrize("iname", ["instance", "instance_label"])
def test_instance_field(iname):
    a = _base(3, [("label", "<u4"), (iname, "<u2")])
    a["label"] = 5
    a[iname] = [1, 2, 2]
    c = ingest_cloud(a)
    assert c.instance.tolist() == [1, 2, 2]


def _pack(rgb):
    rgb = np.asarray(rgb, np.uint32)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


@pytest.mark.parametrize("field,dtype", [("rgb", "<f4"), ("rgb", "<u4"), ("rgba", "<f4")])
def test_palette_layout(field, dtype):
    voc = Vocabulary.default()
    cols = np.array([[188, 189, 34], [140, 86, 75], [1, 2, 3]])  # chair, sofa, unknown
    a = _base(3, [(field, dtype)])
    packed = _pack(cols) | (np.uint32(255) << 24 if field == "rgba" else 0)
    a[field] = packed.astype(np.uint32).view(dtype) if dtype == "<f4" else packed
    with pytest.raises(ValueError, match="palette"):
        ingest_cloud(a)
    c = ingest_cloud(a, palette=voc)
    assert c.labels.tolist() == [5, 6, -1]
    assert c.layout == f"palette:{field}"
    assert np.array_equal(c.rgb, cols)


def test_separate_channels_and_label_with_colour():
    a = _base(2, [("label", "<u4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    a["label"] = [1, 2]
    a["r"], a["g"], a["b"] = [10, 20], [30, 40], [50, 60]
    c = ingest_cloud(a)
    assert c.rgb.tolist() == [[10, 30, 50], [20, 40, 60]]


def test_organized_cloud_and_nan_dropped():
    a = _base(12, [("label", "<u4")]).reshape(3, 4)
    a["label"] = np.arange(12).reshape(3, 4)
    a["x"][1, 2] = np.nan
    a["z"][2, 0] = np.inf
    c = ingest_cloud(a)
    assert len(c) == 10 and c.num_input == 12 and c.num_dropped == 2
    assert 6 not in c.labels.tolist() and 8 not in c.labels.tolist()
    assert np.isfinite(c.points).all()


def test_unknown_layout_error_names_fields():
    a = _base(2, [("intensity", "<f4")])
    with pytest.raises(ValueError) as e:
        ingest_cloud(a)
    msg = str(e.value)
    assert "intensity" in msg and "semantic_label" in msg and "ring" in msg


def test_other_errors():
    with pytest.raises(ValueError, match="structured"):
        ingest_cloud(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="coordinate"):
        ingest_cloud(np.zeros(2, dtype=[("x", "<f4"), ("label", "<u4")]))
    a = _base(2, [("label", "<f4")])
    a["label"] = [1.5, 2]
    with pytest.raises(ValueError, match="integer"):
        ingest_cloud(a)
    a["label"] = [1.0, 2.0]
    assert ingest_cloud(a).labels.tolist() == [1, 2]
    with pytest.raises(ValueError, match="layout"):
        ingest_cloud(_base(1, [("label", "u1")]), layout="weird")
    with pytest.raises(ValueError, match="label_field"):
        ingest_cloud(_base(1, [("label", "u1")]), label_field="nope")


def test_empty_and_all_nan_are_empty_not_errors():
    assert len(ingest_cloud(_base(0, [("label", "u1")]))) == 0
    a = _base(3, [("label", "u1")])
    a["x"] = np.nan
    c = ingest_cloud(a)
    assert len(c) == 0 and c.num_dropped == 3


def test_unpack_rgb_float_and_int_agree():
    cols = np.array([[255, 0, 1], [3, 128, 255]])
    p = _pack(cols)
    assert np.array_equal(unpack_rgb(p), cols)
    assert np.array_equal(unpack_rgb(p.view(np.float32)), cols)
    with pytest.raises(ValueError):
        unpack_rgb(np.zeros(2, np.float64))


def test_make_cloud_validates():
    with pytest.raises(ValueError, match="match"):
        make_cloud(np.zeros((3, 3)), labels=np.zeros(2))
    c = make_cloud(np.array([[0, 0, 0], [np.nan, 0, 0]]), labels=[1, 2])
    assert len(c) == 1 and c.labels.tolist() == [1]


def test_real_kinect_pcd_layout(kinect_dir):
    loaders = pytest.importorskip("ssomotion_ros.scenes.loaders")
    arr = loaders.read_pcd(kinect_dir / "test55.pcd")
    assert arr.ndim == 2  # organized 480 x 640
    c = ingest_cloud(arr)
    assert c.layout == "label:label"
    assert c.rgb is not None and len(c) < arr.size and c.num_dropped > 0
    assert set(np.unique(c.labels)) - {0} and np.isfinite(c.points).all()


def test_rgb_layout_alias():
    voc = Vocabulary.default()
    a = _base(1, [("rgb", "<u4"), ("label", "<u4")])
    a["rgb"] = _pack(np.array([[188, 189, 34]]))
    a["label"] = 9
    assert ingest_cloud(a, palette=voc, layout="rgb").labels.tolist() == [5]
    assert ingest_cloud(a, palette=voc).labels.tolist() == [9]  # auto prefers the label field
