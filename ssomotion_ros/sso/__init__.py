"""ssomotion_ros.sso."""
