"""A minimal ICC v2 matrix/TRC profile writer for tests (Display P3-like).

No ICC file ships with our dependencies, so the test builds one: header,
description, white point, D50-adapted primaries and a gamma curve per channel
(ICC.1:2001-04 structure).
"""
import struct

# Display P3 primaries adapted to D50 (as in Apple's Display P3 profile).
P3_D50 = {"rXYZ": (0.5151, 0.2412, -0.0011), "gXYZ": (0.2920, 0.6922, 0.0419),
          "bXYZ": (0.1571, 0.0666, 0.7841)}
D50 = (0.9642, 1.0, 0.8249)


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz(v) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)


def _curve(gamma: float) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", int(round(gamma * 256))) + b"\0\0"


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_
            + b"\0" * 8 + b"\0\0" + b"\0" + b"\0" * 67)


def _text(text: str) -> bytes:
    return b"text" + b"\0" * 4 + text.encode("ascii") + b"\0"


def display_p3_like(gamma: float = 2.2) -> bytes:
    """Bytes of an RGB display profile with P3 primaries and a pure gamma curve."""
    tags = [(b"desc", _desc("Display P3 (test)")), (b"wtpt", _xyz(D50)),
            (b"rXYZ", _xyz(P3_D50["rXYZ"])), (b"gXYZ", _xyz(P3_D50["gXYZ"])),
            (b"bXYZ", _xyz(P3_D50["bXYZ"])), (b"rTRC", _curve(gamma)),
            (b"gTRC", _curve(gamma)), (b"bTRC", _curve(gamma)), (b"cprt", _text("test"))]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while len(body) % 4:
            body += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntr"
              + b"RGB " + b"XYZ " + b"\0" * 12 + b"acsp" + b"APPL" + b"\0" * 4 + b"\0" * 4
              + b"\0" * 4 + b"\0" * 8 + b"\0" * 4 + b"".join(_s15(c) for c in D50)
              + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data
