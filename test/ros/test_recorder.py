"""Recording live topics to MCAP over real DDS, read back with rosbags."""

from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from ssomotion_ros.msg import MotionStatus
from ssomotion_ros.recording import read_bag
from ssomotion_ros.ros.recorder import TopicRecorder

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def test_records_standard_and_custom_topics(ros_node, tmp_path):
    pub_node = ros_node("ssomotion_test_pub")
    rec_node = ros_node("ssomotion_test_rec")
    p_status = pub_node.node.create_publisher(MotionStatus, "/t/status", RELIABLE)
    p_text = pub_node.node.create_publisher(String, "/t/text", RELIABLE)
    rec = TopicRecorder(rec_node.node, tmp_path / "bag", ["/t/status", "/t/text", "/t/never"])
    rec_node.wait_for(
        lambda: p_status.get_subscription_count() > 0 and p_text.get_subscription_count() > 0,
        what="the recorder to subscribe",
    )
    for i in range(5):
        p_status.publish(MotionStatus(request_id=f"r{i}", state=MotionStatus.EXECUTING))
        p_text.publish(String(data=f"t{i}"))
    rec_node.wait_for(lambda: sum(rec.writer.counts.values()) >= 10, what="10 recorded messages")
    counts = rec.close()
    assert counts == {"/t/status": 5, "/t/text": 5}
    got = list(read_bag(tmp_path / "bag"))
    statuses = [m for t, _, _, m in got if t == "/t/status"]
    assert [s.request_id for s in statuses] == [f"r{i}" for i in range(5)]
    assert statuses[0].state == MotionStatus.EXECUTING
    assert [m.data for t, _, _, m in got if t == "/t/text"] == [f"t{i}" for i in range(5)]
