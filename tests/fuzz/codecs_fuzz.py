"""Coverage-guided fuzzing of both wire codecs with atheris (libFuzzer).

    python tests/fuzz/codecs_fuzz.py -runs=200000

Any exception other than `ProtocolError` from a decoder, or an encode/decode round trip
that changes a message, is a crash that libFuzzer reports with the input that caused it.
"""
from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from protocol import ProtocolError, decode_binary, decode_json, encode_binary, encode_json


def test_one_input(data: bytes) -> None:
    for decode, encode in ((decode_binary, encode_binary), (decode_json, encode_json)):
        try:
            message = decode(data)
        except ProtocolError:
            continue
        assert decode(encode(message)) == message, (data, message)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
