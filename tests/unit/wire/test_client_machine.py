"""The client runs with only its own packages: nothing of the server's runtime, not even pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.requests.options import PoseOptions
from service.wire.options import OPTION_HELP, OPTION_NAMES
from service.wire.protobuf import options_message, pb

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("command", ["estimate", "stream"])
def test_the_client_starts_with_only_the_client_packages(command: str) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "client_only.py"), command, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "--max-people" in run.stdout
    assert "Keep at most this many detections" in run.stdout  # the help the server's PoseOptions documents too


def test_the_guard_refuses_what_a_client_machine_lacks() -> None:
    """The check itself can fail: importing the server's request layer under it is refused."""
    guarded = "import sys; sys.path.insert(0, 'tests'); import client_only; sys.meta_path.insert(0, client_only.ClientOnly()); import service.requests"  # noqa: E501
    run = subprocess.run([sys.executable, "-c", guarded], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "which a client machine does not have" in run.stderr


def test_the_wire_names_are_the_validated_options() -> None:
    """Options has one name set: the proto's fields, PoseOptions' fields and the help texts agree."""
    assert set(OPTION_NAMES) == set(PoseOptions.model_fields) == set(OPTION_HELP)
    for name, field in PoseOptions.model_fields.items():
        assert field.description == OPTION_HELP[name]


def test_options_message_takes_values_as_given() -> None:
    message = options_message({"model": "m", "boxes": "[[1, 2, 3, 4]]", "max_people": 3, "flip_test": False})
    assert message.model == "m"
    assert [(b.x1, b.y1, b.x2, b.y2) for b in message.boxes] == [(1, 2, 3, 4)]
    assert message.HasField("flip_test")
    assert not message.flip_test
    assert message.max_people == 3
    assert options_message({}) == pb.Options()
    with pytest.raises(ValueError, match="boxes must be JSON"):
        options_message({"boxes": "[[1, 2"})
    with pytest.raises(ValueError, match="list of"):
        options_message({"boxes": [[1, 2]]})
