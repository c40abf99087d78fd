"""Re-creates the sample images in this folder (run once; the images are committed).

Photos come from packages' bundled sample data (scikit-image, matplotlib: public domain / CC0, see
README.md); documents, the game screenshot and the QR code are rendered here with Pillow's built-in font
and ``segno``, so their text is known exactly (``expected.json`` lists what each sample should yield).
Needs ``pip install scikit-image==0.26.0 segno==1.6.6`` besides the local-analyzer requirements.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).parent

CLAIM_LINES = [
    "CONTOSO INSURANCE - CLAIM FORM",
    "Policy number: PX-20391-77",
    "Claim date: 14 March 2026",
    "Vehicle: blue hatchback, rear bumper damage",
    "Repair receipt total: 1,284.50 EUR",
    "Signature of policy holder",
]
GAME_LINES = ["SCORE 48210", "LEVEL 7", "KILLS 23  DEATHS 4", "NEW GAME", "OPTIONS", "QUIT"]
QR_TEXT = "https://example.com/claims/PX-20391-77"


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def claim_form() -> Image.Image:
    img = Image.new("RGB", (1000, 700), (250, 250, 245))
    d = ImageDraw.Draw(img)
    d.rectangle((30, 30, 970, 670), outline=(60, 60, 60), width=3)
    y = 70
    for i, line in enumerate(CLAIM_LINES):
        d.text((70, y), line, font=font(40 if i == 0 else 32), fill=(20, 20, 20))
        y += 95 if i == 0 else 80
    d.line((70, 620, 500, 620), fill=(30, 30, 30), width=2)
    return img


def game_screenshot() -> Image.Image:
    img = Image.new("RGB", (1280, 720), (10, 20, 40))
    d = ImageDraw.Draw(img)
    for i in range(0, 1280, 40):  # a tiled "level" floor
        d.polygon([(i, 720), (i + 40, 720), (640, 420)], fill=(30 + i % 80, 60, 90))
    d.ellipse((560, 250, 720, 410), fill=(200, 60, 40))
    d.rectangle((0, 0, 1280, 70), fill=(0, 0, 0))
    d.text((30, 12), GAME_LINES[0], font=font(42), fill=(255, 220, 0))
    d.text((500, 12), GAME_LINES[1], font=font(42), fill=(255, 255, 255))
    d.text((850, 12), GAME_LINES[2], font=font(42), fill=(120, 255, 120))
    for i, item in enumerate(GAME_LINES[3:]):
        d.rectangle((980, 420 + i * 90, 1240, 490 + i * 90), fill=(40, 40, 90), outline=(200, 200, 255), width=2)
        d.text((1010, 432 + i * 90), item, font=font(40), fill=(255, 255, 255))
    return img


def qr_code() -> Image.Image:
    import segno

    buf = io.BytesIO()
    segno.make(QR_TEXT, error="m").save(buf, kind="png", scale=8, border=4)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def main() -> None:
    from matplotlib import cbook
    from skimage import data

    photos = {
        "cat.jpg": Image.fromarray(data.chelsea()),
        "coffee.jpg": Image.fromarray(data.coffee()),
        "astronaut.jpg": Image.fromarray(data.astronaut()),
        "motorcycle.jpg": Image.fromarray(data.stereo_motorcycle()[0]).resize((741, 500)),
        "uniform-portrait.jpg": Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"),
    }
    for name, img in photos.items():
        img.save(HERE / name, quality=90)
    # a resized, recompressed copy: the near-duplicate of cat.jpg
    photos["cat.jpg"].resize((300, 200)).save(HERE / "cat-copy-small.jpg", quality=60)
    claim_form().save(HERE / "insurance-claim.png")
    game_screenshot().save(HERE / "game-screenshot.png")
    qr_code().save(HERE / "qr-code.png")
    expected = {
        "insurance-claim.png": {"text": CLAIM_LINES},
        "game-screenshot.png": {"text": GAME_LINES},
        "qr-code.png": {"barcode": QR_TEXT},
    }
    profiles = {
        "insurance-claim.png": "insurance",
        "motorcycle.jpg": "insurance",
        "qr-code.png": "insurance",
        "game-screenshot.png": "game-telemetry",
        "uniform-portrait.jpg": "fashion",
    }
    (HERE / "profiles.json").write_text(json.dumps(profiles, indent=2) + "\n", encoding="utf-8")
    (HERE / "expected-text.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
