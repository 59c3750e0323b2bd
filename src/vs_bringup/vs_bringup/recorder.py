"""Record a servo run into a self-describing MCAP rosbag2 (Jazzy, version 9) and read it back.

:class:`RunRecorder` subscribes to the run's topics with ``raw=True``: rclpy hands over the CDR bytes
exactly as they travelled, which is what rosbag2 stores, so nothing is converted on the hot path.
The bag's connections carry full message definitions (rosbags builds them from a Jazzy typestore plus
the ``vs_msgs`` ``.msg`` files), so ``ros2 bag``, Foxglove, ``mcap-ros2-support`` and rosbags' ``AnyReader``
read it without the workspace. Run metadata (pipeline, scene, hand-eye) goes into the bag's
``custom_data``.

``rclpy`` is imported only by the recorder itself: :func:`read_run` needs nothing but rosbags, so a
report can be made on any machine.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from vs_common.core.errors import ConfigError, InputError

from vs_bringup.topics import TopicSpec

VS_MSGS = "vs_msgs"
_ZERO = QosTime(0, 0)
_INFINITE = QosTime(0x7FFFFFFF, 0xFFFFFFFF)  # rosbag2's spelling of "default / infinite"


def vs_msgs_msg_dir() -> Path:
    """Directory holding the ``vs_msgs`` ``.msg`` files: the installed share first, the source tree next.

    Raises:
        ConfigError: when neither exists.
    """
    candidates: list[Path] = []
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / VS_MSGS / "msg")
    candidates.append(Path(sys.prefix) / "share" / VS_MSGS / "msg")
    # src/vs_bringup/vs_bringup/recorder.py → src/vs_msgs/msg (a checkout without a build).
    candidates.append(Path(__file__).resolve().parents[2] / VS_MSGS / "msg")
    for path in candidates:
        if path.is_dir() and any(path.glob("*.msg")):
            return path
    raise ConfigError(f"vs_msgs .msg files not found; looked in {[str(p) for p in candidates]}")


def vs_typestore(msg_dir: Path | None = None) -> Typestore:
    """A rosbags typestore: ROS 2 Jazzy's standard types plus every ``vs_msgs/msg/*`` type."""
    store = get_typestore(Stores.ROS2_JAZZY)
    msg_dir = msg_dir or vs_msgs_msg_dir()
    types: dict[str, Any] = {}
    for path in sorted(msg_dir.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{VS_MSGS}/msg/{path.stem}"))
    store.register(types)
    return store


def _qos_of(spec: TopicSpec) -> Qos:
    """What the publisher of ``spec`` offers, stored so ``ros2 bag play`` re-offers it (latched stays latched)."""
    latched = spec.qos == "latched"
    return Qos(
        QosHistory.KEEP_LAST, 1 if latched else 5,
        QosReliability.RELIABLE,
        QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        _INFINITE, _INFINITE, QosLiveliness.AUTOMATIC, _INFINITE, False,
    )


def _msg_class(type_name: str) -> type:
    """'pkg/msg/Name' → the rclpy message class."""
    pkg, sub, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{sub}"), name)


class RunRecorder:
    """Subscribe to a run's topics and write them to an MCAP rosbag2 directory.

    Usable as a context manager. Thread-safe: callbacks may run in a MultiThreadedExecutor.

    Args:
        node_or_context: an rclpy ``Node`` to attach the subscriptions to, or an ``rclpy.Context`` in which
            the recorder creates its own node (add :attr:`node` to your executor in that case).
        topics: what to record (see :func:`vs_bringup.topics.run_topics`).
        path: the bag directory to create (must not exist yet; rosbag2's rule).
        custom_data: string key/values stored in the bag's metadata (pipeline, scene, hand-eye, ...).
        node_name: name of the recorder's own node when given a context.
        compress: zstd-compress the MCAP chunks (what rosbag2's ``zstd_fast`` preset does; rendered images
            shrink several times, any MCAP reader decompresses transparently).
    """

    def __init__(self, node_or_context: Any, topics: Sequence[TopicSpec], path: str | Path,
                 custom_data: dict[str, str] | None = None, node_name: str = "run_recorder",
                 compress: bool = True) -> None:
        from rclpy.context import Context
        from rclpy.node import Node

        if not topics:
            raise InputError("RunRecorder needs at least one topic")
        names = [t.name for t in topics]
        if len(set(names)) != len(names):
            raise InputError(f"duplicate topics in {names}")
        self.path = Path(path)
        if self.path.exists():
            raise InputError(f"bag directory {self.path} already exists; rosbag2 writes into a new one")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(node_or_context, Context):
            self.node = Node(node_name, context=node_or_context)
            self._own_node = True
        elif isinstance(node_or_context, Node):
            self.node = node_or_context
            self._own_node = False
        else:
            raise InputError(f"RunRecorder needs an rclpy Node or Context, got {type(node_or_context).__name__}")

        self.typestore = vs_typestore()
        self._lock = threading.Lock()
        self._writer: Writer | None = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        if compress:
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, str(value))
        self._writer.open()
        self.counts: dict[str, int] = {t.name: 0 for t in topics}
        self.dropped: dict[str, int] = {t.name: 0 for t in topics}
        self._last_ns: dict[str, int] = {}
        # The newest message a rate cap dropped, per topic: written at close so the bag ends with the final frame.
        self._pending: dict[str, tuple[Any, int, bytes]] = {}
        self._subs = []
        for spec in topics:
            conn = self._writer.add_connection(spec.name, spec.type, typestore=self.typestore,
                                               offered_qos_profiles=[_qos_of(spec)])
            period_ns = int(1e9 / spec.max_rate_hz) if spec.max_rate_hz > 0 else 0
            self._subs.append(self.node.create_subscription(
                _msg_class(spec.type), spec.name, self._callback(spec.name, conn, period_ns),
                _rclpy_qos(spec.qos), raw=True))

    def _callback(self, topic: str, conn: Any, period_ns: int):  # noqa: ANN202 - a closure for rclpy
        def on_message(data: bytes) -> None:
            now_ns = self.node.get_clock().now().nanoseconds
            with self._lock:
                if self._writer is None:
                    return
                last = self._last_ns.get(topic)
                if period_ns and last is not None and now_ns - last < period_ns:
                    self.dropped[topic] += 1  # rate cap for images: keeps a demo bag small
                    self._pending[topic] = (conn, now_ns, bytes(data))
                    return
                self._pending.pop(topic, None)
                self._last_ns[topic] = now_ns
                self._writer.write(conn, now_ns, data)
                self.counts[topic] += 1
        return on_message

    def set_custom_data(self, key: str, value: str) -> None:
        """Add a metadata key before :meth:`close` (e.g. the measured result)."""
        with self._lock:
            if self._writer is None:
                raise InputError("the recorder is closed")
            self._writer.set_custom_data(key, str(value))

    def close(self) -> Path:
        """Stop recording, finish the bag (writes metadata.yaml) and return its directory. Idempotent."""
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
        with self._lock:
            if self._writer is not None:
                for topic, (conn, t_ns, data) in sorted(self._pending.items(), key=lambda kv: kv[1][1]):
                    self._writer.write(conn, t_ns, data)
                    self.counts[topic] += 1
                    self.dropped[topic] -= 1
                self._pending.clear()
                self._writer.close()
                self._writer = None
        if self._own_node:
            self.node.destroy_node()
            self._own_node = False
        return self.path

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rclpy_qos(qos_class: str) -> Any:
    """The subscription QoS matching a publisher of ``qos_class`` (the graph's profiles, DESIGN.md §4)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if qos_class == "sensor":
        return qos_profile_sensor_data
    if qos_class == "latched":
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    # Deep enough that a burst between two executor turns is not lost from the record.
    return QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def read_run(path: str | Path, topics: Iterable[str] | None = None) -> dict[str, list[tuple[float, Any]]]:
    """Read a bag (rosbag2 directory or a single ``.mcap``) into per-topic lists of ``(t, msg)``.

    Messages are deserialised by rosbags from the definitions embedded in the bag, so no ROS install nor
    the workspace is needed. They are rosbags dataclasses with the ROS field names.

    Args:
        path: the bag directory (or file).
        topics: restrict to these topics; None reads all.

    Returns:
        ``{topic: [(t_s, msg), ...]}`` in log-time order, ``t_s`` = receive time in seconds.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no bag at {path}")
    wanted = set(topics) if topics is not None else None
    out: dict[str, list[tuple[float, Any]]] = {}
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn in conns:
            out.setdefault(conn.topic, [])
        for conn, t_ns, raw in reader.messages(connections=conns):
            out[conn.topic].append((t_ns * 1e-9, reader.deserialize(raw, conn.msgtype)))
    return out


def read_custom_data(path: str | Path) -> dict[str, str]:
    """The ``custom_data`` map of a rosbag2 directory's metadata ({} when absent)."""
    import yaml

    meta = Path(path) / "metadata.yaml"
    if not meta.is_file():
        return {}
    info = yaml.safe_load(meta.read_text()).get("rosbag2_bagfile_information", {})
    return dict(info.get("custom_data") or {})


# --- the recorder as a node: `record:=true` where rosbag2 is not installed ----------------------------------

def _record_until_shutdown(node: Any) -> None:
    """Record ``node``'s parameters' topics into its ``output`` bag until shutdown, then finish the bag."""
    from vs_common.ros.main import ignore_further_interrupts, spin_until_shutdown

    from vs_bringup import launch_logic

    output = node.declare_parameter("output", "").value
    pipeline = node.declare_parameter("pipeline", "ibvs").value
    with_camera = node.declare_parameter("with_camera", False).value
    if not output:
        raise ConfigError("parameter 'output' (the bag directory to create) is required")
    args = launch_logic.LaunchArgs(pipeline=pipeline)
    topics = launch_logic.record_topics(args, with_camera=bool(with_camera))
    recorder = RunRecorder(node, topics, output, custom_data={"pipeline": pipeline, "recorder": node.get_name()})
    node.get_logger().info(f"recording {len(topics)} topics into {recorder.path}")
    try:
        spin_until_shutdown(node)
    finally:
        ignore_further_interrupts()  # a second Ctrl-C must not cut the bag's metadata short
        path = recorder.close()
        node.get_logger().info(f"bag written: {path} ({sum(recorder.counts.values())} messages)")


def main(args: list[str] | None = None) -> None:
    """``ros2 run vs_bringup recorder --ros-args -p output:=runs/x/bag -p pipeline:=ibvs``."""
    import rclpy
    from rclpy.node import Node
    from vs_common.ros.main import STARTUP_FAILED, construct

    rclpy.init(args=args)
    node = None
    try:
        node = construct(lambda: Node("recorder"))
        _record_until_shutdown(node)
    except (ConfigError, InputError) as err:
        node.get_logger().fatal(f"cannot record: {err}")
        raise SystemExit(STARTUP_FAILED) from None
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
