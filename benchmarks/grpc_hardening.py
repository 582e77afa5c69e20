"""Issue 19's figures: the server's memory and shutdown under hostile gRPC clients, printed, not asserted.

The loads of ``tests/integration/test_grpc_hardening.py`` (which asserts the bounds), run
against ``python -m service`` on loopback with its settings (decode budget 512 MiB, images
of at most 10 MP, a pose model of about 0.1 s a crop here). Memory is the server process's
VmHWM (reset before the load) and VmRSS; "after" is VmRSS 3 s after the load's end (the
service trims the heap once a burst is over, looking every second).

    python -m benchmarks.grpc_hardening calls [--keys]   # 20 raw 10 MP frames + 20 junk 32 MiB messages at once
    python -m benchmarks.grpc_hardening stream           # 60 raw 4K frames at once into one stream
    python -m benchmarks.grpc_hardening health           # 40 junk 32 MiB health checks, open without a token
    python -m benchmarks.grpc_hardening sigterm          # 2 cameras + a stream without a config, then SIGTERM

``--source DIR`` runs the server from another checkout (the same virtual environment):
``git archive main | tar -x -C /tmp/main`` then ``--source /tmp/main`` gives the figures before a change.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from tests import helpers
from tests.oracles import draw_scene

MiB, GB = 2**20, 1000**3
AFTER_S = 3.0
BIG = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
THREE = (((100, 100, 400, 900), (200.0, 300.0)), ((600, 100, 900, 900), (700.0, 300.0)),
         ((1100, 100, 1400, 900), (1200.0, 300.0)))  # fmt: skip


def memory(server: helpers.Server) -> dict[str, int]:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) * 1024 for key in ("VmRSS", "VmHWM")}  # type: ignore[union-attr]


def reset_peak(server: helpers.Server) -> int:
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
    return memory(server)["VmRSS"]


def after(server: helpers.Server) -> int:
    time.sleep(AFTER_S)
    return memory(server)["VmRSS"]


def serve(root: Path, **env: str) -> helpers.Server:
    repo = helpers.slow_repo(root / "repo", helpers.slow_pose(0.1).layers, max_batch_size=1, preferred_batch_sizes=[1])
    return helpers.start_server(repo, root / "server.log", POSE_MODEL="pose", POSE_DETECTOR="det",
                                POSE_DECODE_BUDGET_BYTES=str(512 * MiB), POSE_MAX_IMAGE_PIXELS="10000000",
                                **env)  # fmt: skip


def outcome(call: grpc.RpcError) -> str:
    code, _, pose_code = helpers.error_of(call)
    return f"{code.name}/{pose_code}" if pose_code else code.name


def calls(server: helpers.Server, keys: bool) -> None:
    pixels = pb.EstimateRequest(image=helpers.raw(draw_scene(THREE, size=(3650, 2730)))).SerializeToString()
    junk = pb.EstimateRequest(image=pb.Image(encoded=b"\x01" * (32 * MiB - 64))).SerializeToString()
    base = reset_peak(server)
    with grpc.insecure_channel(server.grpc_target, options=BIG) as channel:
        estimate = channel.unary_unary("/pose.v1.PoseService/Estimate")

        def one(request: bytes) -> str:
            try:
                estimate(request, timeout=120)
            except grpc.RpcError as exc:
                return outcome(exc)
            return "OK"

        with ThreadPoolExecutor(40) as pool:
            outcomes = Counter(pool.map(one, [pixels, junk] * 20))
    peak = memory(server)["VmHWM"]
    left = after(server)
    print(f"40 calls{' without a token' if keys else ''}: {dict(outcomes)}")
    print(f"  start {base / MiB:.0f} MiB, peak +{(peak - base) / GB:.2f} GB, after +{(left - base) / GB:.2f} GB")


def stream(server: helpers.Server) -> None:
    frame = helpers.raw(draw_scene(THREE, size=(3840, 2160)))
    done = threading.Event()

    def frames() -> Iterator[pb.StreamRequest]:
        yield pb.StreamRequest(config=pb.StreamConfig(max_in_flight=1, max_buffered=256))
        for i in range(60):
            yield pb.StreamRequest(frame=pb.Frame(frame_id=i, image=frame))
        done.wait(300)

    base = reset_peak(server)
    received = helpers.metric(server, "pose_stream_frames_received_total")
    with grpc.insecure_channel(server.grpc_target, options=BIG) as channel:
        call = pose_pb2_grpc.PoseServiceStub(channel).Stream(frames(), timeout=300)
        start = time.monotonic()
        helpers.wait_for(lambda: helpers.metric(server, "pose_stream_frames_received_total") - received >= 60,
                         "the 60 frames taken", timeout=240, interval=0.05)  # fmt: skip
        took = time.monotonic() - start
        settled = sum(helpers.metric(server, name) for name in ("pose_stream_frames_dropped_total",
                                                                 "pose_stream_frames_answered_total"))  # fmt: skip
        peak = memory(server)["VmHWM"]
        done.set()
        call.cancel()
    print(f"60 raw 4K frames into one stream: taken in {took:.1f} s, {settled:.0f} answered or dropped by then")
    print(f"  start {base / MiB:.0f} MiB, peak +{(peak - base) / GB:.2f} GB")


def health(server: helpers.Server) -> None:
    junk = b"\x0a" + b"\x01" * (32 * MiB - 64)
    base = reset_peak(server)
    with grpc.insecure_channel(server.grpc_target, options=BIG) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")

        def one(_: int) -> str:
            try:
                check(junk, timeout=120)
            except grpc.RpcError as exc:
                return outcome(exc)
            return "OK"

        with ThreadPoolExecutor(40) as pool:
            outcomes = Counter(pool.map(one, range(40)))
    peak = memory(server)["VmHWM"]
    left = after(server)
    print(f"40 junk health checks: {dict(outcomes)}")
    print(f"  start {base / MiB:.0f} MiB, peak +{(peak - base) / GB:.2f} GB, after +{(left - base) / GB:.2f} GB")


def sigterm(server: helpers.Server, grace: float) -> None:
    image = helpers.raw(draw_scene(THREE[:1]))
    ends: list[str] = []
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pose_pb2_grpc.PoseServiceStub(channel)
        sent: list[dict[int, float]] = [{}, {}]
        stop = threading.Event()

        def camera(k: int) -> None:
            def frames() -> Iterator[pb.StreamRequest]:
                yield pb.StreamRequest(config=pb.StreamConfig(max_in_flight=2, max_buffered=4))
                i = 0
                while not stop.wait(0.05):
                    sent[k][i] = time.monotonic()
                    yield pb.StreamRequest(frame=pb.Frame(frame_id=i, image=image))
                    i += 1

            taken: set[int] = set()
            status = "OK"
            try:
                for answer in stub.Stream(frames(), timeout=120):
                    taken |= set(answer.dropped_frame_ids) | ({answer.frame_id} - {0} if answer.drops_only else
                                                               {answer.frame_id})  # fmt: skip
            except grpc.RpcError as exc:
                status = outcome(exc)
            late = sum(1 for i in taken if sent[k][i] >= sigterm_at)
            ends.append(
                f"camera {k}: {status} {time.monotonic() - sigterm_at:.2f} s after SIGTERM; {len(sent[k])} "
                f"sent, {len(taken)} answered or reported dropped, {late} of them sent after SIGTERM"
            )

        cameras = [threading.Thread(target=camera, args=(k,)) for k in range(2)]
        for thread in cameras:
            thread.start()
        time.sleep(3)
        release = threading.Event()

        def nothing() -> Iterator[pb.StreamRequest]:
            release.wait(60)
            yield from ()

        silent = stub.Stream(nothing(), timeout=60)
        helpers.wait_for(lambda: helpers.metric(server, "pose_stream_active") >= 3, "three streams open")
        sigterm_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            next(silent)
        except grpc.RpcError as exc:
            ends.append(f"stream without a config: {outcome(exc)} {time.monotonic() - sigterm_at:.2f} s after SIGTERM")
        code = server.process.wait(60)
        exited = time.monotonic() - sigterm_at
        stop.set()
        release.set()
        for thread in cameras:
            thread.join(30)
    print("\n".join(ends))
    print(
        f"exit {code} {exited:.2f} s after SIGTERM (grace {grace:g} s); _ServerStoppedError in the log: "
        f"{'_ServerStoppedError' in server.logs()}, a traceback: {'Traceback' in server.logs()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("load", choices=("calls", "stream", "health", "sigterm"))
    parser.add_argument("--keys", action="store_true", help="calls: POSE_API_KEYS set, the calls carry no token")
    parser.add_argument("--source", type=Path, help="run the server from this checkout (e.g. main, for 'before')")
    args = parser.parse_args()
    if args.source is not None:
        helpers.ROOT = args.source.resolve()  # start_server runs python -m service there
    root = Path(tempfile.mkdtemp(prefix="grpc-hardening-"))
    grace = 20.0
    env = {"POSE_API_KEYS": "s3cret"} if args.keys or args.load == "health" else {}
    if args.load == "calls":
        env["POSE_MAX_PEOPLE"] = "4"  # as the test: forty calls' queue room fits
    if args.load == "sigterm":
        env["POSE_SHUTDOWN_GRACE_S"] = str(grace)
    server = serve(root, **env)
    try:
        if args.load == "calls":
            calls(server, args.keys)
        elif args.load == "stream":
            stream(server)
        elif args.load == "health":
            health(server)
        else:
            sigterm(server, grace)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
