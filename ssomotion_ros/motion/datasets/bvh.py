"""A BVH (Biovision hierarchy) reader with its own forward kinematics.

``read_bvh(path) -> BvhClip``. Positions and rotations are in the file's own frame and
units (for the CMU conversions: y up, body facing +z at rest, units of the ASF skeleton);
:mod:`ssomotion_ros.motion.datasets.cmu` maps them to the map frame and metres.

Semantics: each joint's Euler channels, in the order they are listed, compose as intrinsic
rotations (``Zrotation Yrotation Xrotation`` -> ``R = Rz @ Ry @ Rx``), degrees. Position
channels, when present, replace the matching component of the joint's OFFSET.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BvhClip", "read_bvh", "parse_bvh"]

log = logging.getLogger(__name__)

_ROT = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass
class BvhClip:
    """One BVH motion.

    names: J joint names (End Sites excluded). parents: (J,) int64, -1 for the root.
    offsets: (J, 3) float64 rest offsets from the parent, file units, file frame.
    channels: per joint, the list of channel names in file order.
    frames: (T, C) float64 raw channel values (degrees for rotations).
    frame_time: seconds per frame. end_sites: {joint index: (3,) offset of its End Site}.
    """

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[list[str]]
    frames: np.ndarray
    frame_time: float
    end_sites: dict[int, np.ndarray]
    path: str = ""

    @property
    def fps(self) -> float:
        """Frames per second (1 / frame_time)."""
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def index(self, name: str) -> int:
        """Index of joint ``name``; ValueError listing the joints if absent."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(
                f"joint {name!r} not in BVH {self.path!r}; joints: {self.names}"
            ) from None

    def _channel_slices(self) -> list[tuple[int, int]]:
        out, c = [], 0
        for ch in self.channels:
            out.append((c, c + len(ch)))
            c += len(ch)
        return out

    def local_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) float64 local rotation matrices (identity for joints without
        rotation channels)."""
        from scipy.spatial.transform import Rotation

        T, J = self.num_frames, len(self.names)
        out = np.tile(np.eye(3), (T, J, 1, 1))
        for j, (a, _b) in enumerate(self._channel_slices()):
            rot = [(k, _ROT[c]) for k, c in enumerate(self.channels[j]) if c in _ROT]
            if not rot:
                continue
            seq = "".join(axis for _, axis in rot)
            angles = self.frames[:, [a + k for k, _ in rot]]
            out[:, j] = Rotation.from_euler(seq, angles, degrees=True).as_matrix()
        return out

    def local_translations(self) -> np.ndarray:
        """(T, J, 3) float64 local translations (offset, with position channels applied)."""
        T, J = self.num_frames, len(self.names)
        out = np.broadcast_to(self.offsets, (T, J, 3)).copy()
        for j, (a, _b) in enumerate(self._channel_slices()):
            for k, c in enumerate(self.channels[j]):
                if c in _POS:
                    out[:, j, _POS[c]] = self.frames[:, a + k]
        return out

    def global_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics in the file frame.

        Returns (positions (T, J, 3) float64 file units, rotations (T, J, 3, 3) float64
        global rotation of each joint's frame)."""
        lr = self.local_rotations()
        lt = self.local_translations()
        T, J = lr.shape[:2]
        pos = np.zeros((T, J, 3))
        rot = np.zeros((T, J, 3, 3))
        for j in range(J):
            p = self.parents[j]
            if p < 0:
                rot[:, j] = lr[:, j]
                pos[:, j] = lt[:, j]
            else:
                rot[:, j] = rot[:, p] @ lr[:, j]
                pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", rot[:, p], lt[:, j])
        return pos, rot

    def positions(self) -> np.ndarray:
        """(T, J, 3) float64 joint positions, file units and frame."""
        return self.global_transforms()[0]

    def rest_positions(self) -> np.ndarray:
        """(J, 3) float64 joint positions with all channels zero (the rest/bind pose)."""
        out = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            out[j] = self.offsets[j] + (out[p] if p >= 0 else 0.0)
        return out


class _Tokens:
    def __init__(self, text: str, path: str):
        self.items: list[tuple[str, int]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            for tok in line.split():
                self.items.append((tok, lineno))
        self.i = 0
        self.path = path

    def next(self, what: str) -> str:
        if self.i >= len(self.items):
            raise ValueError(f"{self.path}: unexpected end of file, expected {what}")
        tok, _ = self.items[self.i]
        self.i += 1
        return tok

    def expect(self, word: str) -> None:
        tok = self.next(repr(word))
        if tok != word:
            raise ValueError(f"{self.path}:{self.line()}: expected {word!r}, got {tok!r}")

    def line(self) -> int:
        return self.items[max(self.i - 1, 0)][1] if self.items else 0

    def floats(self, n: int, what: str) -> list[float]:
        out = []
        for _ in range(n):
            tok = self.next(what)
            try:
                out.append(float(tok))
            except ValueError:
                raise ValueError(
                    f"{self.path}:{self.line()}: {what}: {tok!r} is not a number"
                ) from None
        return out


def parse_bvh(text: str, path: str = "<string>") -> BvhClip:
    """Parse BVH text. Raises ValueError naming the line for malformed input."""
    tk = _Tokens(text, path)
    if not tk.items or tk.items[0][0] != "HIERARCHY":
        raise ValueError(f"{path}: not a BVH file (must start with 'HIERARCHY')")
    tk.next("HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}

    def joint(parent: int) -> None:
        name = tk.next("joint name")
        idx = len(names)
        names.append(name)
        parents.append(parent)
        tk.expect("{")
        tk.expect("OFFSET")
        offsets.append(tk.floats(3, "OFFSET"))
        tk.expect("CHANNELS")
        n_tok = tk.next("channel count")
        if not n_tok.isdigit():
            raise ValueError(f"{path}:{tk.line()}: bad channel count {n_tok!r}")
        chans = [tk.next("channel name") for _ in range(int(n_tok))]
        for c in chans:
            if c not in _ROT and c not in _POS:
                raise ValueError(f"{path}:{tk.line()}: unknown channel {c!r} in joint {name}")
        channels.append(chans)
        while True:
            tok = tk.next("'JOINT', 'End' or '}'")
            if tok == "}":
                return
            if tok == "JOINT":
                joint(idx)
            elif tok == "End":
                tk.expect("Site")
                tk.expect("{")
                tk.expect("OFFSET")
                end_sites[idx] = np.array(tk.floats(3, "End Site OFFSET"))
                tk.expect("}")
            else:
                raise ValueError(f"{path}:{tk.line()}: unexpected {tok!r} in joint {name}")

    tk.expect("ROOT")
    joint(-1)
    tk.expect("MOTION")
    tk.expect("Frames:")
    n_frames_tok = tk.next("frame count")
    if not n_frames_tok.isdigit():
        raise ValueError(f"{path}:{tk.line()}: bad frame count {n_frames_tok!r}")
    n_frames = int(n_frames_tok)
    tk.expect("Frame")
    tk.expect("Time:")
    (frame_time,) = tk.floats(1, "Frame Time")
    if not frame_time > 0:
        raise ValueError(f"{path}: Frame Time must be > 0, got {frame_time}")
    n_ch = sum(len(c) for c in channels)
    rest = tk.items[tk.i :]
    if len(rest) != n_frames * n_ch:
        raise ValueError(
            f"{path}: expected {n_frames} frames x {n_ch} channels = {n_frames * n_ch} values "
            f"after the header, found {len(rest)} (truncated or corrupt file?)"
        )
    try:
        frames = np.array([t for t, _ in rest], dtype=np.float64).reshape(n_frames, n_ch)
    except ValueError:
        bad = next((t, ln) for t, ln in rest if not _is_float(t))
        raise ValueError(f"{path}:{bad[1]}: motion value {bad[0]!r} is not a number") from None
    if not np.all(np.isfinite(frames)):
        raise ValueError(f"{path}: motion data contains NaN or inf")
    if n_frames == 0:
        raise ValueError(f"{path}: no frames")
    return BvhClip(
        names=names,
        parents=np.array(parents, dtype=np.int64),
        offsets=np.array(offsets, dtype=np.float64),
        channels=channels,
        frames=frames,
        frame_time=float(frame_time),
        end_sites=end_sites,
        path=path,
    )


def _is_float(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def read_bvh(path: str | Path) -> BvhClip:
    """Read a BVH file. Raises FileNotFoundError if missing, ValueError if malformed."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"BVH file not found: {p}")
    text = p.read_text(encoding="utf-8", errors="replace")
    clip = parse_bvh(text, str(p))
    log.debug(
        "read %s: %d joints, %d frames at %.1f fps", p, len(clip.names), clip.num_frames, clip.fps
    )
    return clip
