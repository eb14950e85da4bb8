"""ssomotion_ros.body."""
