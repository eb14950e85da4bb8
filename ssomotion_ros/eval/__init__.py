"""ssomotion_ros.eval."""
