"""ssomotion_ros.scenes."""
