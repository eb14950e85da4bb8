"""ssomotion_ros.data."""
