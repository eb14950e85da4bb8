import pytest

from ssomotion_ros.instructions import InstructionConfig, RequestIntake, split_addressee


def test_split_addressee():
    assert split_addressee("alice: walk to the door") == ("alice", "walk to the door")
    assert split_addressee("  bob_2 :sit down ") == ("bob_2", "sit down")
    assert split_addressee("walk to the door") == (None, "walk to the door")
    assert split_addressee("at 3:30 walk") == (None, "at 3:30 walk")


def test_intake_assigns_ids_and_agents():
    intake = RequestIntake(InstructionConfig(default_agent="human_0"), id_prefix="n")
    a = intake.make("walk to the sofa")
    b = intake.make("carol: sit down")
    c = intake.make("lie down", agent_id="dave", request_id="mine-1")
    assert (a.request_id, a.agent_id, a.text, a.problem) == (
        "n-1",
        "human_0",
        "walk to the sofa",
        None,
    )
    assert (b.request_id, b.agent_id, b.text) == ("n-2", "carol", "sit down")
    assert (c.request_id, c.agent_id) == ("mine-1", "dave")


@pytest.mark.parametrize(
    "text, agent, expect",
    [
        ("", "", "empty instruction"),
        ("   ", "", "empty instruction"),
        ("alice:   ", "", "empty instruction"),
        ("x" * 501, "", "too long (501 characters; at most 500)"),
        ("walk", "9lives", "agent name '9lives' is not valid"),
    ],
)
def test_bad_instructions_get_a_reason(text, agent, expect):
    req = RequestIntake(InstructionConfig()).make(text, agent_id=agent)
    assert req.problem is not None and expect in req.problem


def test_config_validation():
    with pytest.raises(ValueError, match="max_text_length"):
        InstructionConfig(max_text_length=0)
    with pytest.raises(ValueError, match="default_agent"):
        InstructionConfig(default_agent="no spaces allowed")
