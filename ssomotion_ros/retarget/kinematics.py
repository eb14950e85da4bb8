"""Batched, differentiable forward kinematics of a :class:`~.urdf.RobotModel` in torch.

A configuration is ``q (..., D)`` (radians for revolute/continuous/spherical DoFs, URDF
length units for prismatic ones; spherical joints take an axis-angle 3-vector in their
joint frame) plus a root pose ``root_rot (..., 3, 3)``, ``root_pos (..., 3)`` (the root
link's frame in the world). Link poses come back in the world frame.
"""

from __future__ import annotations

import numpy as np
import torch

from ssomotion_ros.body.rotations import axis_angle_to_matrix
from ssomotion_ros.retarget.urdf import RobotModel

__all__ = ["RobotKinematics", "segment_distance"]


class RobotKinematics:
    """Precomputed tensors of a robot for fast batched FK on ``device``.

    robot: the model; device/dtype: where and how the tensors live.
    """

    def __init__(self, robot: RobotModel, device="cpu", dtype=torch.float32):
        self.robot = robot
        self.device = torch.device(device)
        self.dtype = dtype
        kw = {"device": self.device, "dtype": dtype}
        self.origin_rot = torch.as_tensor(np.stack([j.origin[:3, :3] for j in robot.joints]), **kw)
        self.origin_pos = torch.as_tensor(np.stack([j.origin[:3, 3] for j in robot.joints]), **kw)
        self.axes = torch.as_tensor(np.stack([j.axis for j in robot.joints]), **kw)
        self.lower = torch.as_tensor(robot.lower, **kw)
        self.upper = torch.as_tensor(robot.upper, **kw)
        joints = robot.joints
        dev = self.device
        idx = lambda v: torch.as_tensor(v, dtype=torch.long, device=dev)  # noqa: E731
        one = [(k, j) for k, j in enumerate(joints) if j.type in ("revolute", "continuous")]
        self.rev_j = idx([k for k, _ in one])
        self.rev_d = idx([j.dof_start for _, j in one])
        sph = [(k, j) for k, j in enumerate(joints) if j.type == "spherical"]
        self.sph_j = idx([k for k, _ in sph])
        self.sph_d = idx([[j.dof_start + i for i in range(3)] for _, j in sph]).reshape(-1, 3)
        pri = [(k, j) for k, j in enumerate(joints) if j.type == "prismatic"]
        self.pri_j = idx([k for k, _ in pri])
        self.pri_d = idx([j.dof_start for _, j in pri])
        self.pri_axis_world = torch.as_tensor(
            np.array([j.origin[:3, :3] @ j.axis for _, j in pri]).reshape(-1, 3), **kw
        )
        ax = np.array([j.axis if j.type in ("revolute", "continuous") else np.zeros(3)
                       for j in joints])  # fmt: skip
        kmat = np.zeros((len(joints), 3, 3))
        kmat[:, 0, 1], kmat[:, 0, 2], kmat[:, 1, 2] = -ax[:, 2], ax[:, 1], -ax[:, 0]
        kmat[:, 1, 0], kmat[:, 2, 0], kmat[:, 2, 1] = ax[:, 2], -ax[:, 1], ax[:, 0]
        self.kmat = torch.as_tensor(kmat, **kw)
        self.kmat2 = self.kmat @ self.kmat
        self.eye = torch.eye(3, **kw)
        self.zero_idx = idx([0])
        depth = np.zeros(robot.num_links, np.int64)
        for j in joints:
            depth[j.child] = depth[j.parent] + 1
        self.levels = []
        for lv in range(1, int(depth.max()) + 1):
            ks = [k for k, j in enumerate(joints) if depth[j.child] == lv]
            self.levels.append((idx(ks), idx([joints[k].parent for k in ks]),
                                idx([joints[k].child for k in ks])))  # fmt: skip
        caps = robot.capsules
        self.cap_link = torch.as_tensor([c.link for c in caps], dtype=torch.long, device=device)
        self.cap_a = torch.as_tensor(np.array([c.a for c in caps]).reshape(-1, 3), **kw)
        self.cap_b = torch.as_tensor(np.array([c.b for c in caps]).reshape(-1, 3), **kw)
        self.cap_r = torch.as_tensor(np.array([c.radius for c in caps]), **kw)

    def _local(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-joint local transforms for all joints at once: (..., J, 3, 3), (..., J, 3)."""
        batch = q.shape[:-1]
        nj = len(self.robot.joints)
        kw = {"device": q.device, "dtype": q.dtype}
        ang = torch.zeros(*batch, nj, **kw)
        if len(self.rev_j):
            ang = ang.index_copy(-1, self.rev_j, q[..., self.rev_d])
        # Rodrigues for 1-DoF rotations: R = I + sin K + (1 - cos) K^2
        s, c = torch.sin(ang)[..., None, None], torch.cos(ang)[..., None, None]
        rj = self.eye + s * self.kmat + (1 - c) * self.kmat2
        if len(self.sph_j):
            aa = q[..., self.sph_d]  # (..., S, 3)
            rj = rj.index_copy(-3, self.sph_j, axis_angle_to_matrix(aa))
        rot = self.origin_rot @ rj
        pos = self.origin_pos.expand(*batch, nj, 3)
        if len(self.pri_j):
            shift = self.pri_axis_world * q[..., self.pri_d, None]
            pos = pos.index_add(-2, self.pri_j, shift)
        return rot, pos

    def link_poses(
        self, q: torch.Tensor, root_rot: torch.Tensor, root_pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World poses of every link.

        q: (..., D) configuration (see module doc); root_rot: (..., 3, 3) world rotation of
        the root link; root_pos: (..., 3) its world position (URDF units).
        Returns (rotations (..., L, 3, 3), positions (..., L, 3)), world frame.
        Joints are composed level by level (all joints at one tree depth in one batched
        product), so the cost grows with the tree depth, not the joint count.
        """
        d = self.robot.num_dofs
        if q.shape[-1] != d:
            raise ValueError(f"q: expected (..., {d}) for robot {self.robot.name!r}, got "
                             f"{tuple(q.shape)}")  # fmt: skip
        if root_rot.shape[-2:] != (3, 3) or root_pos.shape[-1] != 3:
            raise ValueError(
                f"root_rot must be (..., 3, 3) and root_pos (..., 3), got "
                f"{tuple(root_rot.shape)}, {tuple(root_pos.shape)}"
            )
        batch = torch.broadcast_shapes(q.shape[:-1], root_rot.shape[:-2], root_pos.shape[:-1])
        q = q.expand(*batch, d)
        lrot, lpos = self._local(q)
        nl = self.robot.num_links
        rots = torch.zeros(*batch, nl, 3, 3, device=q.device, dtype=q.dtype)
        poss = torch.zeros(*batch, nl, 3, device=q.device, dtype=q.dtype)
        rots = rots.index_copy(-3, self.zero_idx, root_rot.expand(*batch, 3, 3)[..., None, :, :])
        poss = poss.index_copy(-2, self.zero_idx, root_pos.expand(*batch, 3)[..., None, :])
        for jidx, pidx, cidx in self.levels:
            rp = rots.index_select(-3, pidx)
            pp = poss.index_select(-2, pidx)
            r = rp @ lrot.index_select(-3, jidx)
            p = pp + (rp @ lpos.index_select(-2, jidx)[..., None])[..., 0]
            rots = rots.index_copy(-3, cidx, r)
            poss = poss.index_copy(-2, cidx, p)
        return rots, poss

    def capsules_world(
        self, rot: torch.Tensor, pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Capsule segments in the world: (a (..., C, 3), b (..., C, 3)) from link poses."""
        r = rot[..., self.cap_link, :, :]
        p = pos[..., self.cap_link, :]
        a = (r @ self.cap_a[:, :, None])[..., 0] + p
        b = (r @ self.cap_b[:, :, None])[..., 0] + p
        return a, b


def segment_distance(
    p1: torch.Tensor, q1: torch.Tensor, p2: torch.Tensor, q2: torch.Tensor, eps: float = 1e-9
) -> torch.Tensor:
    """Closest distance between segments p1-q1 and p2-q2 (all (..., 3)); returns (...).

    Standard clamped closed form (Ericson, Real-Time Collision Detection 5.1.9), with the
    degenerate (point) cases handled by ``eps``; differentiable almost everywhere."""
    d1 = q1 - p1
    d2 = q2 - p2
    r = p1 - p2
    a = (d1 * d1).sum(-1)
    e = (d2 * d2).sum(-1)
    f = (d2 * r).sum(-1)
    c = (d1 * r).sum(-1)
    b = (d1 * d2).sum(-1)
    denom = a * e - b * b
    s = torch.where(
        denom > eps, ((b * f - c * e) / denom.clamp_min(eps)).clamp(0, 1), torch.zeros_like(a)
    )
    t = (b * s + f) / e.clamp_min(eps)
    # t outside [0, 1]: clamp and recompute s
    t_c = t.clamp(0, 1)
    s = torch.where(t != t_c, ((b * t_c - c) / a.clamp_min(eps)).clamp(0, 1), s)
    s = torch.where(e > eps, s, (-c / a.clamp_min(eps)).clamp(0, 1))
    s = torch.where(a > eps, s, torch.zeros_like(s))
    t = torch.where(e > eps, t_c, torch.zeros_like(t_c))
    c1 = p1 + d1 * s[..., None]
    c2 = p2 + d2 * t[..., None]
    return ((c1 - c2).pow(2).sum(-1) + 1e-12).sqrt()
