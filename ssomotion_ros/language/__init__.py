"""ssomotion_ros.language."""
