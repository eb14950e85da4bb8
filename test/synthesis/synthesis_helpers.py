"""Helpers shared by the synthesis tests (importable by name, see test/conftest.py)."""


def instance(room, name):
    """The first instance called ``name`` of the (SceneModel, Scene) fixture ``room``."""
    model, _ = room
    return next(i for i in model.instances() if i.name == name)
