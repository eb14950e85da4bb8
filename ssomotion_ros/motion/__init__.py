"""ssomotion_ros.motion."""
