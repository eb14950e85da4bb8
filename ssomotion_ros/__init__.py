"""ssomotion_ros: instructed, full-body simulated humans in a robot's scanned world.

The core (every subpackage except :mod:`ssomotion_ros.ros`) is ROS-free. The generated
message module ``ssomotion_ros.msg`` is built by colcon and installed into the
virtual environment's site-packages; ``extend_path`` lets this source package find it
there when the source tree is what Python imports (editable installs, tests).
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
