"""The browser page's protocol.js and the Python codec agree on every byte of the header.

Python checks the shared vectors (tests/protocol/vectors.json) with protocol.encode_binary /
decode_binary; Node runs tests/browser/protocol_vectors.mjs, which checks the same vectors
with server/web/protocol.js and prints messages JavaScript encoded itself, for Python to read.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from protocol import ErrorCode, Frame, Kind, ProcessedFrame, ProtocolError, SourceFace, decode_binary, encode_binary
from protocol import PACING
from protocol.binary_codec import HEADER_SIZE, PACED, VERSION
from tests.protocol import vectors

ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPT = ROOT / "tests" / "browser" / "protocol_vectors.mjs"


def same_float(a: float, b: float) -> bool:
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)  # -0.0 keeps its sign


def check_decoded(message, kind: int, seq: int, timestamp: float, payload: bytes, pace_ms: int | None = None) -> None:
    if kind == Kind.FRAME:
        assert isinstance(message, Frame) and message.jpeg == payload
    elif kind == Kind.PROCESSED_FRAME:
        assert isinstance(message, ProcessedFrame) and message.jpeg == payload and message.pace_ms == pace_ms
    else:
        assert isinstance(message, SourceFace) and message.image == payload
        return  # a source face carries no seq or timestamp on the Python side
    assert message.seq == seq
    assert same_float(message.timestamp, timestamp)


def test_vectors_file_is_generated_from_the_cases():
    assert vectors.PATH.read_text() == vectors.render(), "run: .venv/bin/python -m tests.protocol.vectors"


@pytest.mark.parametrize("vector", vectors.load()["vectors"], ids=lambda v: v["note"])
def test_python_codec_reads_and_writes_each_vector(vector):
    data = bytes.fromhex(vector["bytes_hex"])
    payload = bytes.fromhex(vector["payload_hex"])
    kind, flags, seq, timestamp, pace_ms = (vector[key] for key in ("kind", "flags", "seq", "timestamp", "pace_ms"))
    assert data == vectors.pack(kind, flags, seq, timestamp, pace_ms) + payload  # the layout, by hand
    message = decode_binary(data)
    check_decoded(message, kind, seq, timestamp, payload, pace_ms)
    # encode_binary writes flags 0 (PACED with a pace), a source face with seq 0 and timestamp 0,
    # and a falsy timestamp (-0.0 included) as +0.0: compare where those rules leave the bytes alone.
    plain_zero = timestamp != 0 or same_float(timestamp, 0.0)
    own_flags = flags == (0 if pace_ms is None else PACED)
    if own_flags and plain_zero and (kind != Kind.SOURCE_FACE or (seq == 0 and timestamp == 0)):
        assert encode_binary(message) == data


@pytest.mark.parametrize("vector", vectors.load()["invalid"], ids=lambda v: v["note"])
def test_python_codec_refuses_each_invalid_vector(vector):
    with pytest.raises(ProtocolError) as caught:
        decode_binary(bytes.fromhex(vector["bytes_hex"]))
    assert caught.value.code.value == vector["code"]


@pytest.fixture(scope="module")
def node_report() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to test server/web/protocol.js (Debian: apt-get install nodejs)")
    result = subprocess.run([node, str(NODE_SCRIPT)], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"protocol_vectors.mjs failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_javascript_checks_every_vector(node_report):
    data = vectors.load()
    assert node_report["checked"] == len(data["vectors"]) + len(data["invalid"])


def test_javascript_constants_match_python(node_report):
    assert node_report["header_size"] == HEADER_SIZE
    assert node_report["version"] == VERSION
    assert node_report["kinds"] == {kind.name: kind.value for kind in Kind}
    assert node_report["paced_flag"] == PACED and node_report["pacing"] == PACING
    assert sorted(node_report["error_codes"]) == sorted(code.value for code in ErrorCode)


def test_python_reads_bytes_written_by_javascript(node_report):
    encoded = node_report["js_encoded"]
    assert {item["kind"] for item in encoded} == {kind.value for kind in Kind}
    for item in encoded:
        data = bytes.fromhex(item["bytes_hex"])
        payload = bytes.fromhex(item["payload_hex"])
        pace_ms = item.get("pace_ms")
        head = vectors.pack(item["kind"], item["flags"], item["seq"], item["timestamp"], pace_ms)
        assert data[:len(head)] == head
        check_decoded(decode_binary(data), item["kind"], item["seq"], float(item["timestamp"]), payload, pace_ms)
