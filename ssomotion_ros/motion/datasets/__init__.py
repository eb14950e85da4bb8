"""Motion datasets: BVH reading, CMU -> SMPL retargeting, AMASS / HUMANISE loaders,
action labels, training windows and augmentation (owned by the body & data engineer)."""
