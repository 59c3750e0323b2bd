"""Config dataclass → ROS parameters over real DDS: read-only refused, dynamic validated then applied."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.ros

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from vs_common.core.config import check_choice, check_range, describe  # noqa: E402
from vs_common.core.errors import ConfigError  # noqa: E402
from vs_common.ros.params import declare_config  # noqa: E402


@dataclass(frozen=True)
class ToyConfig:
    mode: str = describe("fast or slow", default="fast")
    gain: float = describe("a gain in (0, 10]", default=1.0)
    device: str = describe("fixed at start-up", default="cpu")
    limits: tuple[float, float] = describe("two numbers", default=(0.1, 0.2))

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, ("fast", "slow"))
        check_range("gain", self.gain, 0.0, 10.0, lo_open=True)


class ToyNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("toy", **kwargs)
        self.seen: list[ToyConfig] = []
        self.config = declare_config(self, ToyConfig, prefix="toy.", dynamic=("mode", "gain", "limits"),
                                     on_change=self._on_change)

    def _on_change(self, cfg: ToyConfig) -> None:
        self.config = cfg
        self.seen.append(cfg)


def _set(client: AsyncParameterClient, executor, spin, name: str, value):
    future = client.set_parameters([Parameter(name, value=value)])
    assert spin(executor, future.done, timeout=10.0)
    return future.result().results[0]


@pytest.fixture
def toy(ros_context, ros_executor, spin):
    node = ToyNode(context=ros_context, parameter_overrides=[Parameter("toy.gain", value=2.0)])
    probe = Node("probe", context=ros_context)
    for n in (node, probe):
        ros_executor.add_node(n)
    client = AsyncParameterClient(probe, "/toy")
    assert spin(ros_executor, lambda: client.services_are_ready(), timeout=10.0)
    return node, client


def test_dynamic_parameters_are_validated_then_applied(toy, ros_executor, spin):
    node, client = toy
    assert node.config.gain == 2.0  # the override reached the config at start-up
    bad = _set(client, ros_executor, spin, "toy.mode", "turbo")
    assert not bad.successful and "choose one of ['fast', 'slow']" in bad.reason
    assert node.get_parameter("toy.mode").value == "fast" and node.seen == []
    out_of_range = _set(client, ros_executor, spin, "toy.gain", 0.0)
    assert not out_of_range.successful and "out of range" in out_of_range.reason
    good = _set(client, ros_executor, spin, "toy.mode", "slow")
    assert good.successful and node.config.mode == "slow" and node.config.gain == 2.0
    arr = _set(client, ros_executor, spin, "toy.limits", [0.3, 0.4])
    assert arr.successful and node.config.limits == (0.3, 0.4)  # arrays come back as the field's tuple
    wrong_type = _set(client, ros_executor, spin, "toy.gain", "high")
    assert not wrong_type.successful and node.config.gain == 2.0
    assert [c.mode for c in node.seen] == ["slow", "slow"]


class FragileNode(ToyNode):
    """A node whose core object cannot be rebuilt for mode 'slow' (as a detector this OpenCV build lacks)."""

    def _on_change(self, cfg: ToyConfig) -> None:
        if cfg.mode == "slow":
            raise RuntimeError("cannot build the core object for mode 'slow'")
        super()._on_change(cfg)


def test_a_value_the_node_cannot_apply_is_refused_and_the_node_keeps_running(ros_context, ros_executor, spin):
    node, probe = FragileNode(context=ros_context), Node("probe", context=ros_context)
    for n in (node, probe):
        ros_executor.add_node(n)
    client = AsyncParameterClient(probe, "/toy")
    assert spin(ros_executor, lambda: client.services_are_ready(), timeout=10.0)
    res = _set(client, ros_executor, spin, "toy.mode", "slow")
    assert not res.successful and "could not apply" in res.reason
    assert node.get_parameter("toy.mode").value == "fast" and node.config.mode == "fast"
    assert _set(client, ros_executor, spin, "toy.gain", 3.0).successful and node.config.gain == 3.0


def test_other_parameters_are_read_only(toy, ros_executor, spin):
    node, client = toy
    res = _set(client, ros_executor, spin, "toy.device", "cuda")
    assert not res.successful and "read-only" in res.reason.lower()
    assert node.config.device == "cpu"
    future = client.describe_parameters(["toy.device", "toy.gain"])
    assert spin(ros_executor, future.done, timeout=10.0)
    device, gain = future.result().descriptors
    assert device.read_only and not gain.read_only and gain.type == ParameterType.PARAMETER_DOUBLE
    assert "fixed at start-up" in device.description


def test_bad_start_values_raise_config_errors(ros_context):
    with pytest.raises(ConfigError, match="choose one of"):
        ToyNode(context=ros_context, parameter_overrides=[Parameter("toy.mode", value="turbo")]).destroy_node()
    node = Node("bad_dynamic", context=ros_context)
    try:
        with pytest.raises(ConfigError, match="on_change"):
            declare_config(node, ToyConfig, dynamic=("gain",))
        with pytest.raises(ConfigError, match="no settings"):
            declare_config(node, ToyConfig, prefix="x.", dynamic=("nope",), on_change=print)
    finally:
        node.destroy_node()


@dataclass(frozen=True)
class OuterConfig:
    """A config nesting ToyConfig as ``toy``, with a check across both levels."""

    toy: ToyConfig = describe("the toy's settings", default_factory=ToyConfig)
    cap: float = describe("the toy's gain must stay below this", default=5.0)

    def __post_init__(self) -> None:
        if self.toy.gain >= self.cap:
            raise ConfigError(f"toy.gain={self.toy.gain} must stay below cap={self.cap}")


def test_nested_configs_are_dotted_parameters_validated_whole(ros_context, ros_executor, spin):
    """A nested config's settings are dotted parameters (start values from a nested override mapping); setting
    one rebuilds and checks the whole config, the outer config's cross-check included."""
    seen: list[OuterConfig] = []
    node = Node("outer", context=ros_context)
    cfg = declare_config(node, OuterConfig, overrides={"toy": {"mode": "slow"}}, dynamic=("toy",),
                         on_change=seen.append)
    assert cfg == OuterConfig(toy=ToyConfig(mode="slow"))
    assert node.get_parameter("toy.mode").value == "slow" and node.get_parameter("cap").value == 5.0
    probe = Node("probe", context=ros_context)
    for n in (node, probe):
        ros_executor.add_node(n)
    client = AsyncParameterClient(probe, "/outer")
    assert spin(ros_executor, lambda: client.services_are_ready(), timeout=10.0)
    over_cap = _set(client, ros_executor, spin, "toy.gain", 6.0)  # valid for ToyConfig, not for OuterConfig
    assert not over_cap.successful and "cap" in over_cap.reason and seen == []
    bad = _set(client, ros_executor, spin, "toy.mode", "turbo")
    assert not bad.successful and "toy.mode='turbo'" in bad.reason  # the full dotted name
    assert _set(client, ros_executor, spin, "toy.gain", 4.0).successful and seen[-1].toy.gain == 4.0
    assert not _set(client, ros_executor, spin, "cap", 1.0).successful  # read-only: not in dynamic
