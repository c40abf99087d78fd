"""Procedural garment-like images for the custom labels benchmark and tests (generated, so free to ship).

Five classes told apart by silhouette: ``tshirt``, ``dress``, ``trousers``, ``shoe``, ``bag``. Everything
else varies at random within every class: garment colour, background colour, fill pattern (solid, stripes,
dots, checks), size, position, a small rotation and sensor-like noise, so a classifier has to learn the shape.
``stranger`` images (random circles, stars, and bars; no garment) measure how often ``unknown`` is answered
for something that is none of the labels. ``image(label, seed)`` is deterministic.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("tshirt", "dress", "trousers", "shoe", "bag")
SIZE = 256
Poly = list[tuple[float, float]]


def _tshirt() -> list[Poly]:
    return [[(30, 20), (45, 12), (55, 20), (70, 12), (85, 20), (100, 40), (85, 48), (80, 40), (80, 95), (20, 95),
             (20, 40), (15, 48), (0, 40)]]  # fmt: skip


def _dress() -> list[Poly]:
    return [[(38, 0), (44, 0), (46, 12), (54, 12), (56, 0), (62, 0), (64, 30), (90, 100), (10, 100), (36, 30)]]


def _trousers() -> list[Poly]:
    return [[(22, 0), (78, 0), (84, 100), (60, 100), (50, 35), (40, 100), (16, 100)]]


def _shoe() -> list[Poly]:
    return [[(5, 60), (10, 35), (35, 35), (45, 50), (90, 62), (98, 78), (95, 85), (5, 85)]]


def _bag() -> list[Poly]:
    return [[(10, 35), (90, 35), (95, 100), (5, 100)]]


_SHAPES = {"tshirt": _tshirt, "dress": _dress, "trousers": _trousers, "shoe": _shoe, "bag": _bag}


def _colour(rng: random.Random, light: bool) -> tuple[int, int, int]:
    lo, hi = (170, 255) if light else (20, 200)
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def _pattern(rng: random.Random, colour: tuple[int, int, int]) -> Image.Image:
    """A full-size fill: solid, stripes, dots or checks in the garment colour and a second colour."""
    fill = Image.new("RGB", (SIZE, SIZE), colour)
    draw = ImageDraw.Draw(fill)
    other = _colour(rng, light=rng.random() < 0.5)
    kind = rng.choice(("solid", "stripes", "dots", "checks"))
    step = rng.randint(10, 24)
    if kind == "stripes":
        for y in range(0, SIZE, step):
            draw.rectangle((0, y, SIZE, y + step // 2), fill=other)
    elif kind == "dots":
        for y in range(0, SIZE, step):
            for x in range(0, SIZE, step):
                draw.ellipse((x, y, x + step // 3, y + step // 3), fill=other)
    elif kind == "checks":
        for y in range(0, SIZE, step):
            for x in range(0, SIZE, step):
                if (x // step + y // step) % 2:
                    draw.rectangle((x, y, x + step, y + step), fill=other)
    return fill


def _place(poly: Poly, scale: float, dx: float, dy: float, angle: float) -> Poly:
    c, s = math.cos(angle), math.sin(angle)
    out = []
    for x, y in poly:
        x, y = x - 50, y - 50
        out.append((SIZE / 2 + dx + scale * (c * x - s * y), SIZE / 2 + dy + scale * (s * x + c * y)))
    return out


def _stranger(rng: random.Random, draw: ImageDraw.ImageDraw) -> None:
    for _ in range(rng.randint(3, 8)):
        x, y, r = rng.randint(0, SIZE), rng.randint(0, SIZE), rng.randint(10, 60)
        colour = _colour(rng, light=rng.random() < 0.5)
        shape = rng.choice(("circle", "star", "bar"))
        if shape == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        elif shape == "bar":
            draw.rectangle((x - r, y - 4, x + r, y + 4), fill=colour)
        else:
            points = [
                (x + (r if k % 2 == 0 else r / 2.5) * math.cos(k * math.pi / 5),
                 y + (r if k % 2 == 0 else r / 2.5) * math.sin(k * math.pi / 5))
                for k in range(10)
            ]  # fmt: skip
            draw.polygon(points, fill=colour)


def image(label: str, seed: int) -> bytes:
    """A PNG of class ``label`` (one of ``CLASSES``, or ``stranger``); the same (label, seed) -> the same bytes."""
    rng = random.Random(f"{label}:{seed}")
    background = _colour(rng, light=True)
    canvas = Image.new("RGB", (SIZE, SIZE), background)
    if label == "stranger":
        _stranger(rng, ImageDraw.Draw(canvas))
    else:
        mask = Image.new("L", (SIZE, SIZE), 0)
        scale = rng.uniform(1.5, 2.2)
        dx, dy = rng.uniform(-20, 20), rng.uniform(-20, 20)
        angle = math.radians(rng.uniform(-12, 12))
        for poly in _SHAPES[label]():
            ImageDraw.Draw(mask).polygon(_place(poly, scale, dx, dy, angle), fill=255)
        if label == "bag":  # the handle
            r = 25 * scale
            cx, cy = SIZE / 2 + dx, SIZE / 2 + dy - 15 * scale
            ImageDraw.Draw(mask).arc((cx - r, cy - r, cx + r, cy + r), 180, 360, fill=255, width=max(3, int(4 * scale)))
        canvas.paste(_pattern(rng, _colour(rng, light=False)), (0, 0), mask)
    pixels = np.asarray(canvas, dtype=np.int16)
    noise = np.random.default_rng(rng.randrange(1 << 30)).integers(-6, 7, pixels.shape)
    out = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
