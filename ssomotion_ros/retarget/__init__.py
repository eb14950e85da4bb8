"""ssomotion_ros.retarget."""
