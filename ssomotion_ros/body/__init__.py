"""The human body: 22-joint SMPL kinematic tree and its parameters (ROS-free).

- :mod:`~ssomotion_ros.body.skeleton`: ``JOINT_NAMES``, ``PARENTS``, ``default_skeleton()``,
  ``forward_kinematics(params (..., 69)) -> joints (..., 22, 3)`` (map frame, z up; the
  conventions are documented there and in ``docs/body.md``).
- :mod:`~ssomotion_ros.body.rotations`: axis-angle / matrix / quaternion / 6D conversions.
- :mod:`~ssomotion_ros.body.collision`: capsule proxy points with radii.
- :mod:`~ssomotion_ros.body.mannequin`: posed mannequin meshes (mannequin-x, no model files).
- :mod:`~ssomotion_ros.body.smplx_adapter`: exact SMPL-X meshes from user-supplied files.
"""
