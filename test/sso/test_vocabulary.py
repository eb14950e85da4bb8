import numpy as np
import pytest

from ssomotion_ros.sso.vocabulary import (
    LinearReduction,
    Vocabulary,
    default_vocabulary_path,
    pca_reduction,
    semantic_features,
)


def test_nyu40_ships_and_reads():
    voc = Vocabulary.default()
    assert default_vocabulary_path().is_file()
    assert len(voc) == 41
    assert voc.name(5) == "chair" and voc.name(6) == "sofa" and voc.name(2) == "floor"
    assert voc.id_of("Chair") == 5
    assert voc.name(999) == "unknown_999"
    assert voc.palette_unique


def test_palette_decoding_roundtrip():
    voc = Vocabulary.default()
    rgb = voc.colors[:, :3]
    assert np.array_equal(voc.decode_colors(rgb), voc.ids)
    assert voc.decode_colors(np.array([[1, 2, 3]]))[0] == -1
    assert np.array_equal(voc.colors_of(np.array([5]))[0], [188, 189, 34])


def test_user_csv_any_ids(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("name,red,green,blue,alpha,id\nsofa,10,20,30,255,7\nlamp,1,2,3,255,100\n")
    voc = Vocabulary.from_csv(p)
    assert voc.name(100) == "lamp" and voc.max_id == 100
    assert voc.decode_colors(np.array([[10, 20, 30], [1, 2, 3]])).tolist() == [7, 100]
    out = tmp_path / "back.csv"
    voc.to_csv(out)
    assert Vocabulary.from_csv(out).key == voc.key


def test_bad_csv_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("name,id\nchair,1\n")
    with pytest.raises(ValueError, match="lacks"):
        Vocabulary.from_csv(p)
    p.write_text("name,red,green,blue,alpha,id\nchair,1,2,3,255,1\nsofa,1,2,3,255,1\n")
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary.from_csv(p)
    with pytest.raises(ValueError, match="not found"):
        Vocabulary.from_csv(tmp_path / "missing.csv")


def test_pca_reduction_matches_numpy_and_is_sign_fixed():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(30, 12))
    red = pca_reduction(e, 4)
    f = e @ red.weight.T + red.bias
    # reference: centred SVD
    c = e - e.mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    ref = c @ vt[:4].T
    assert np.allclose(np.abs(f), np.abs(ref), atol=1e-4)
    for row in red.weight:
        assert row[np.argmax(np.abs(row))] > 0
    # deterministic, and invariant to the sign of the input basis
    red2 = pca_reduction(e.copy(), 4)
    assert np.array_equal(red.weight, red2.weight)
    # fewer names than dims: extra components are zero
    small = pca_reduction(e[:3], 16)
    assert np.allclose(small.weight[2:], 0)


def test_semantic_features_real_encoder_pca_and_trained():
    voc = Vocabulary.from_names(["chair", "sofa", "table", "floor", "wall"])
    tab = semantic_features(voc, 16)
    assert tab.table.shape == (voc.max_id + 2, 16)
    assert np.allclose(tab.table[-1], 0)
    assert semantic_features(voc, 16) is tab  # cached
    assert np.allclose(tab.lookup(np.array([-1, 99])), 0)
    w = np.random.default_rng(1).normal(size=(16, 384)).astype(np.float32)
    red = LinearReduction(w, np.zeros(16, np.float32))
    tab2 = semantic_features(voc, reduction=red)
    from ssomotion_ros.language.encoders import get_text_encoder

    emb = get_text_encoder().encode(voc.names)
    assert np.allclose(tab2.table[voc.ids], emb @ w.T, atol=1e-5)
    with pytest.raises(ValueError, match="384"):
        semantic_features(voc, reduction=LinearReduction(np.zeros((16, 10)), np.zeros(16)))


def test_reduction_from_files(tmp_path):
    import torch

    w = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.ones(2, np.float32)
    np.savez(tmp_path / "r.npz", weight=w, bias=b)
    r = LinearReduction.from_file(tmp_path / "r.npz")
    assert np.array_equal(r.weight, w) and np.array_equal(r.bias, b)
    state = {
        "head.weight": torch.zeros(3, 5),
        "head.bias": torch.zeros(3),
        "scene.reduction.weight": torch.from_numpy(w),
        "scene.reduction.bias": torch.from_numpy(b),
    }
    torch.save(state, tmp_path / "ckpt.pt")
    r2 = LinearReduction.from_file(tmp_path / "ckpt.pt")
    assert np.array_equal(r2.weight, w)
    np.savez(tmp_path / "bad.npz", x=w)
    with pytest.raises(ValueError, match="weight"):
        LinearReduction.from_file(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="not found"):
        LinearReduction.from_file(tmp_path / "nope.npz")


def test_load_by_name_or_path(tmp_path):
    assert Vocabulary.load("nyu40").name(5) == "chair"
    assert len(Vocabulary.load(default_vocabulary_path())) == 41
    with pytest.raises(ValueError, match="shipped"):
        Vocabulary.load("no_such_vocabulary")
