"""Configuration dataclasses of the SSO (one documented field per parameter).

Every size used by the fusion, the tri-planes and the planning maps lives here; the ROS
mapper node declares one parameter per field. Units: metres, seconds, radians.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FusionConfig:
    """Global voxel map (the fused SSO) and how clouds are fused into it."""

    #: Edge length of a global voxel, metres (the method uses 0.04).
    voxel_size: float = 0.04
    #: Hard cap on stored voxels. When a fusion would exceed it, the voxels with the
    #: lowest decayed evidence (oldest first on ties) are evicted. Memory stays below
    #: ``max_voxels * bytes_per_voxel`` (see ``VoxelMap.bytes_per_voxel``, 104 B).
    max_voxels: int = 20_000_000
    #: Label slots per voxel (space-saving heavy-hitter counters). The majority label is
    #: exact while a voxel has seen at most this many distinct labels.
    label_slots: int = 4
    #: Instance slots per voxel (same mechanism as labels).
    instance_slots: int = 2
    #: Evidence added per point that falls into a voxel (hit weight).
    hit_weight: float = 1.0
    #: Decayed evidence at or above which a voxel counts as occupied.
    occupied_threshold: float = 1.0
    #: Half-life of the evidence in seconds (``stamp`` units); 0 disables decay. With
    #: decay, a voxel not re-observed fades and, once below ``occupied_threshold``, no
    #: longer counts as occupied (a moved chair disappears from the map).
    decay_half_life: float = 0.0
    #: Once the map has more than this many voxels, voxels seen for the first time go to
    #: a small sorted side table instead of being inserted into the main sorted table
    #: (an insert copies the whole table: ~0.5 s per cloud at 5 M voxels).
    delta_min_rows: int = 262_144
    #: The side table is merged into the main table when it holds more than
    #: ``max(delta_min_rows, delta_fraction * main rows)`` voxels (and before every
    #: snapshot, save or eviction), so the cost of the merge is spread over many clouds.
    delta_fraction: float = 0.125
    #: Upper bound on the evidence of one voxel (keeps a long-static voxel able to fade).
    max_evidence: float = 1000.0
    #: Points fused per chunk; bigger clouds are fused chunk by chunk (each chunk is
    #: atomic: an error leaves every earlier chunk and the prior map intact).
    chunk_points: int = 2_000_000
    #: Largest bounding box (in voxels) of one chunk for which points are grouped with a
    #: dense table (torch path: 16 bytes per cell, freed after the chunk; compiled CPU
    #: path: 1 bit per cell and thread); larger boxes are grouped by sorting (torch
    #: path).
    max_batch_cells: int = 16_000_000
    #: A cloud with more points than this logs a warning (it is still fused, in chunks).
    warn_points: int = 10_000_000
    #: Label ids that are never voted (e.g. 0 = "unlabeled/invalid" in many datasets);
    #: their points still add occupancy evidence.
    ignore_labels: tuple[int, ...] = ()
    #: torch device: ``"auto"`` picks ``cuda`` when available, else ``cpu``.
    device: str = "auto"
    #: How a map on the CPU groups a cloud's points by voxel: ``"auto"`` uses the compiled
    #: kernels (numba; same results, several times faster) when numba is installed and
    #: the cloud's bounding box fits ``max_batch_cells``, else the torch path;
    #: ``"compiled"`` requires numba; ``"torch"`` always uses torch. Ignored on CUDA.
    cpu_kernel: str = "auto"
    #: Threads of the compiled CPU kernels (each takes a slice of the cloud): 0 = every
    #: core numba may use (NUMBA_NUM_THREADS, the CPU count by default). Clouds under
    #: 20 000 points use one thread.
    cpu_threads: int = 0


@dataclass
class TriplaneConfig:
    """Local crop around each agent and its bi-directional tri-plane decomposition."""

    #: Local voxel edge, metres (0.04 in the method).
    voxel_size: float = 0.04
    #: Local grid size in voxels along body x, y, z (101 x 101 x 81: +-2.0, +-2.0, +-1.6 m).
    grid_size: tuple[int, int, int] = (101, 101, 81)
    #: Height of the crop centre above the floor under the agent, metres (the method
    #: centres the crop on the pelvis of a standing body).
    center_height: float = 0.9
    #: The z map is projected from the plane ``grid_size[2] // 2 + z_plane_offset`` voxels
    #: downward (the reference code uses 10: 0.4 m above the crop centre).
    z_plane_offset: int = 10
    #: Floor height used when no floor is known under an agent, metres (map frame z).
    default_floor_height: float = 0.0


@dataclass
class MapsConfig:
    """Planning and guidance maps derived from the fused SSO."""

    #: Label names whose voxels are walkable ground (matched case-insensitively against
    #: the vocabulary). Voxels of other labels are obstacles or furniture.
    floor_names: tuple[str, ...] = ("floor", "ground", "rug", "carpet", "floor mat", "mat")
    #: Occupied voxels lower than ``floor + step_height`` above the floor under them do
    #: not block walking (small steps, thresholds, noise), metres.
    step_height: float = 0.15
    #: Occupied voxels higher than ``floor + body_height`` do not block walking
    #: (overhangs, table tops above heads), metres.
    body_height: float = 1.8
    #: Body radius used for clearance in ``walkable_grid`` when none is given, metres.
    body_radius: float = 0.25
    #: When a column has no floor voxel, its floor is the map-wide floor height if the
    #: lowest occupied voxel there is within this distance of it, metres.
    floor_tolerance: float = 0.08
    #: Whether unobserved columns (no floor seen) count as walkable.
    unknown_is_free: bool = False
    #: Unseen floor enclosed by observed obstacles (walls, furniture) is assumed to be
    #: floor at the map-wide height (sensors rarely see every patch of a room's floor).
    fill_enclosed_unknown: bool = True
    #: Gaps in the observed walls up to twice this width (metres) are sealed when
    #: deciding what is enclosed; a larger gap lets the outside in and nothing is filled.
    enclosure_seal: float = 0.3
    #: Margin added around the occupied bounds of the map for the 2-D grid and SDF, metres.
    margin: float = 0.5
    #: The dense SDF volume is built at ``voxel_size * sdf_stride`` resolution
    #: (2 = 0.08 m by default), keeping its memory an 8th of the voxel grid's.
    sdf_stride: int = 2
    #: Distances are truncated at this value (metres); queries far from everything and
    #: outside the volume return it.
    sdf_truncation: float = 2.0
    #: Maximum cells of any dense grid built for queries (occupancy snapshot, SDF);
    #: beyond it the snapshot is built only around the queried region.
    max_dense_cells: int = 64_000_000


@dataclass
class InstanceConfig:
    """Object instances extracted from the fused SSO."""

    #: Instances with fewer voxels are dropped (noise).
    min_voxels: int = 20
    #: Label names never reported as instances (structure).
    stuff_names: tuple[str, ...] = ("floor", "wall", "ceiling", "unlabeled", "unknown", "void")
    #: Names that afford sitting (a seat surface is estimated for them).
    sit_names: tuple[str, ...] = (
        "chair",
        "sofa",
        "couch",
        "stool",
        "bench",
        "armchair",
        "seat",
        "bed",
        "ottoman",
    )
    #: Names that afford lying down.
    lie_names: tuple[str, ...] = ("bed", "sofa", "couch")
    #: Seat surfaces are searched between these heights above the floor, metres.
    seat_height_range: tuple[float, float] = (0.25, 0.75)
    #: Connectivity for connected components when the cloud has no instance ids:
    #: 6, 18 or 26 neighbours.
    connectivity: int = 26


@dataclass
class SceneModelConfig:
    """Everything a :class:`~ssomotion_ros.sso.scene.SceneModel` needs."""

    #: Global voxel map and fusion.
    fusion: FusionConfig = field(default_factory=FusionConfig)
    #: Local tri-planes.
    triplane: TriplaneConfig = field(default_factory=TriplaneConfig)
    #: Planning and guidance maps.
    maps: MapsConfig = field(default_factory=MapsConfig)
    #: Instance extraction.
    instances: InstanceConfig = field(default_factory=InstanceConfig)
    #: Label vocabulary: a CSV path (``name,red,green,blue,alpha,id``) or the name of a
    #: shipped one (``nyu40``, ``ssomotion_indoor``); None = the shipped NYU-40.
    vocabulary: str | None = None
    #: Dimension of the reduced semantic feature (16 in the method).
    feature_dim: int = 16
    #: Trained reduction weights (.npz weight/bias, or a checkpoint); None = PCA.
    reduction_weights: str | None = None
    #: OpenCLIP ViT-B/32 weights file for the text encoder; None = offline MiniLM.
    openclip_weights: str | None = None


@dataclass
class MapperConfig:
    """Parameters of the mapper node (ROS layer; every field is a ROS parameter)."""

    #: Semantic point cloud topic (sensor_msgs/PointCloud2).
    cloud_topic: str = "/semantic_pointcloud"
    #: Subscription reliability: "reliable" or "best_effort" (big clouds need reliable).
    cloud_reliability: str = "reliable"
    #: Subscription history depth.
    cloud_qos_depth: int = 5
    #: Clouds waiting to be fused at most; when full the oldest waiting cloud is dropped.
    max_queued_clouds: int = 4
    #: Cloud layout: "auto", "label" (integer label field) or "palette" / "rgb" (packed
    #: segmentation colours decoded through the palette).
    layout: str = "auto"
    #: Integer label field to use ("" = the accepted names: label, semantic_label, ...).
    label_field: str = ""
    #: Palette CSV (name,red,green,blue,alpha,id) or shipped vocabulary name for the
    #: palette layout ("" = the vocabulary's colours).
    palette_path: str = ""
    #: Vocabulary of the label ids: a CSV path or a shipped name ("" = NYU-40).
    vocabulary_path: str = ""
    #: Trained semantic reduction weights ("" = deterministic PCA).
    reduction_weights: str = ""
    #: OpenCLIP ViT-B/32 weights for the text encoder ("" = offline MiniLM).
    openclip_weights: str = ""
    #: Map frame (REP-103). Clouds in another frame need ``sensor_pose_topic`` (there is
    #: no tf2 in this build); without it they are fused as if in this frame (warning).
    frame_id: str = "map"
    #: Pose of the cloud's frame in the map frame, for clouds not published in the map
    #: frame: a geometry_msgs/PoseStamped or nav_msgs/Odometry topic ("" = none).
    sensor_pose_topic: str = ""
    #: Message type of ``sensor_pose_topic``: "pose_stamped" or "odometry".
    sensor_pose_type: str = "pose_stamped"
    #: A cloud uses the pose whose stamp is nearest to its own; clouds farther than this
    #: (seconds) from every pose received are dropped with a warning.
    max_pose_time_diff: float = 0.1
    #: Global voxel size, metres.
    voxel_size: float = 0.04
    #: Evidence half-life in seconds of message time (0 = no decay).
    decay_half_life: float = 0.0
    #: Maximum stored voxels (memory bound, 104 bytes each).
    max_voxels: int = 20_000_000
    #: torch device: "auto", "cpu" or "cuda".
    device: str = "auto"
    #: CPU fusion path: "auto" (compiled numba kernels when installed), "compiled" or
    #: "torch" (see FusionConfig.cpu_kernel); ignored on CUDA.
    cpu_kernel: str = "auto"
    #: Threads of the compiled CPU fusion kernels, 0 = all cores (FusionConfig.cpu_threads).
    cpu_threads: int = 0
    #: torch CPU threads for the process (torch.set_num_threads, process-wide): 0 = auto
    #: (half the CPU cores, at least 1, never more than torch's default; oversubscribed
    #: threads made fusion 3-4x slower on a busy 2-core machine), -1 = leave torch alone.
    torch_threads: int = 0
    #: Publishing rate of the occupancy cloud and instance markers, Hz (0 = never).
    publish_rate: float = 1.0
    #: Occupied voxels (sensor_msgs/PointCloud2, x y z rgb label instance).
    occupancy_topic: str = "/ssomotion/sso/occupancy"
    #: Colour of the published voxels: "class" (palette colour of the label) or "rgb".
    occupancy_color: str = "class"
    #: Object instances (visualization_msgs/MarkerArray: boxes + names).
    instances_topic: str = "/ssomotion/sso/instances"
    #: File used by the save/load services (std_srvs/Trigger), an .npz map.
    map_path: str = "ssomotion_map.npz"
    #: Load ``map_path`` at start-up when the file exists.
    load_on_start: bool = False
    #: Save service name (std_srvs/Trigger).
    save_service: str = "~/save_map"
    #: Load service name (std_srvs/Trigger).
    load_service: str = "~/load_map"


def resolve_device(device: str = "auto"):
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; anything else as given."""
    import torch

    if device in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
