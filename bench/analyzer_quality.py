"""Tags and boxes per sample image, before against after: the analyzer's quality regression record.

``snapshot`` takes the general profile's tags and object boxes of every sample; ``compare`` sets them beside
the baseline recorded once from the analyzer before its speed work (``bench/results/analyzer-baseline.json``):
which baseline objects (same name) and faces are still found (IoU >= ``MATCH_IOU``), which baseline tags of at
least ``TAG_MIN`` confidence are still given, and how far the adult score and text evidence moved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS

BASELINE = RESULTS / "analyzer-baseline.json"
MATCH_IOU = 0.5
TAG_MIN = 0.5


def snapshot(analyzer: Any, images: dict[str, bytes]) -> dict[str, Any]:
    """name -> {tags: [[name, confidence]], objects: [[name, confidence, [x, y, w, h]]], faces: [[confidence,
    [x, y, w, h]]], adultScore, textEvidence} for the general profile."""
    from imagepipe.ports import AnalysisRequest
    from imagepipe.profiles import load_profiles

    general = load_profiles()["general"]
    request = AnalysisRequest(features=general.features, extras=general.extras, profile="general")
    out: dict[str, Any] = {}
    for name, data in images.items():
        result = analyzer.analyze(data, request)
        out[name] = {
            "tags": [[t["name"], t["confidence"]] for t in result["tagsResult"]["values"]],
            "objects": [
                [o["tags"][0]["name"], o["tags"][0]["confidence"], [o["boundingBox"][k] for k in "xywh"]]
                for o in result["objectsResult"]["values"]
            ],
            "faces": [[f["confidence"], [f["boundingBox"][k] for k in "xywh"]] for f in result["imagepipe"]["faces"]],
            "adultScore": result["imagepipe"]["adult"]["adultScore"],
            "textEvidence": result["imagepipe"]["textEvidence"]["score"],
        }
    return out


def iou(a: list[int], b: list[int]) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def compare(after: dict[str, Any], baseline_path: Path) -> dict[str, Any]:
    """Per sample: tags and objects before and after, the baseline objects and tags kept, and the shares."""
    if not baseline_path.is_file():
        return {"baseline": None, "objectsKeptShare": None, "tagsKeptShare": None, "facesKeptShare": None}
    before: dict[str, Any] = json.loads(baseline_path.read_text(encoding="utf-8"))
    samples: dict[str, Any] = {}
    objects_total = objects_kept = tags_total = tags_kept = faces_total = faces_kept = 0
    for name, old in before.items():
        new = after.get(name, {"tags": [], "objects": []})
        kept_objects = [
            o for o in old["objects"] if any(n[0] == o[0] and iou(n[2], o[2]) >= MATCH_IOU for n in new["objects"])
        ]
        strong = [t[0] for t in old["tags"] if t[1] >= TAG_MIN]
        new_names = {t[0] for t in new["tags"]}
        kept_tags = [t for t in strong if t in new_names]
        kept_faces = [f for f in old["faces"] if any(iou(n[1], f[1]) >= MATCH_IOU for n in new["faces"])]
        faces_total, faces_kept = faces_total + len(old["faces"]), faces_kept + len(kept_faces)
        objects_total, objects_kept = objects_total + len(old["objects"]), objects_kept + len(kept_objects)
        tags_total, tags_kept = tags_total + len(strong), tags_kept + len(kept_tags)
        samples[name] = {
            "before": old,
            "after": new,
            "objectsLost": [o for o in old["objects"] if o not in kept_objects],
            "strongTagsLost": [t for t in strong if t not in kept_tags],
            "facesLost": [f for f in old["faces"] if f not in kept_faces],
            "adultScoreChange": round(new["adultScore"] - old["adultScore"], 4),
            "textEvidenceChange": round(new["textEvidence"] - old["textEvidence"], 4),
        }
    return {
        "baseline": baseline_path.name,
        "objectsKeptShare": round(objects_kept / objects_total, 3) if objects_total else 1.0,
        "tagsKeptShare": round(tags_kept / tags_total, 3) if tags_total else 1.0,
        "facesKeptShare": round(faces_kept / faces_total, 3) if faces_total else 1.0,
        "rule": f"object kept: same name and IoU >= {MATCH_IOU} (faces: IoU); "
        f"tag kept: a baseline tag >= {TAG_MIN} still given",
        "samples": samples,
    }
