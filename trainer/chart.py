"""A small grouped bar chart written as PNG with the standard library only (zlib + struct), so
the before/after report needs no plotting package. Labels use a built-in 3x5 pixel font."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

# 3x5 glyphs, one string of 15 bits (rows top to bottom) per character.
_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "%": "101001010100101",
    " ": "000000000000000", "-": "000000111000000", ":": "000010000010000", "/": "001001010100100",
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011", "D": "110101101101110",
    "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
    "Q": "010101101110011", "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111",
}

Color = tuple[int, int, int]
PALETTE: list[Color] = [(150, 150, 160), (40, 110, 200), (230, 130, 40), (60, 160, 90)]


class Canvas:
    """An RGB pixel buffer."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: Color = (30, 30, 30), scale: int = 2) -> None:
        for ch in text.upper():
            glyph = _FONT.get(ch, _FONT[" "])
            for i, bit in enumerate(glyph):
                if bit == "1":
                    gx, gy = i % 3, i // 3
                    self.rect(x + gx * scale, y + gy * scale, x + (gx + 1) * scale, y + (gy + 1) * scale, color)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                       for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 4 * scale


def bar_chart(path: Path, title: str, groups: list[str], series: list[tuple[str, list[float]]],
              width: int = 640, height: int = 360) -> None:
    """Grouped bars of values in [0, 1] (shown as percentages): one group per metric, one bar per
    series (e.g. base / tuned)."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 50, 20, 50, 60
    plot_h = height - top - bottom
    canvas.text(left, 14, title, scale=3)
    for tick in range(0, 101, 25):  # axis and grid
        y = top + plot_h - plot_h * tick // 100
        canvas.rect(left, y, width - right, y + 1, (225, 225, 225))
        canvas.text(8, y - 5, f"{tick}%")
    canvas.rect(left, top, left + 1, top + plot_h, (80, 80, 80))
    group_w = (width - left - right) // max(1, len(groups))
    bar_w = max(6, (group_w - 30) // max(1, len(series)))
    for g, name in enumerate(groups):
        gx = left + g * group_w + 15
        for s, (_, values) in enumerate(series):
            value = max(0.0, min(1.0, values[g]))
            x = gx + s * bar_w
            y = top + plot_h - round(plot_h * value)
            canvas.rect(x, y, x + bar_w - 4, top + plot_h, PALETTE[s % len(PALETTE)])
            label = f"{value * 100:.0f}%"
            canvas.text(x + max(0, (bar_w - 4 - text_width(label)) // 2), y - 14, label)
        canvas.text(gx, top + plot_h + 10, name)
    lx = left
    for s, (label, _) in enumerate(series):  # legend
        canvas.rect(lx, height - 22, lx + 12, height - 10, PALETTE[s % len(PALETTE)])
        canvas.text(lx + 18, height - 21, label)
        lx += 30 + text_width(label)
    Path(path).write_bytes(canvas.png())
