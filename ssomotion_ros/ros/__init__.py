"""ssomotion_ros.ros."""
