"""Offline provider schemas for infra/terraform, and a checker of the HCL against them.

No Terraform binary or provider can be downloaded here, so `terraform validate` cannot run. This module
stands in for its schema part:

- azurerm: the schema of the pinned provider version, read from the CDKTF prebuilt bindings
  `@cdktf/provider-azurerm` 14.23.1 (package.json devDependency, exact). Those bindings are generated from
  hashicorp/azurerm 4.55.0 (the package's own package.json says so under cdktf.provider.version), which is
  the floor of the version range in infra/terraform/terraform.tf, so every argument is checked against the
  oldest provider `terraform init` may pick. The package ships its jsii type system (`.jsii`, JSON): one
  `<Name>Config` interface per resource and data source, one struct per nested block, each property
  documented with a link to the registry page whose anchor is the Terraform name
  (`.../docs/resources/cosmosdb_account#capabilities`), and one class per resource whose properties are
  every readable attribute. Why this package: it is the last azurerm binding on npm that installs cleanly
  (HashiCorp stopped publishing them in December 2025; the cdktn fork's npm release needs a peer version
  that is not on the registry).
- azapi: no bindings exist on npm; the argument and block names of azapi_resource and
  azapi_update_resource are listed below from the azapi 2.8.0 documentation (docs/resources/*.md at tag
  v2.8.0 of Azure/terraform-provider-azapi), the floor of its range. Their `body` is dynamic: azapi checks
  it against its embedded Azure API schema at plan time; tests/infra/test_terraform.py pins its shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
BINDINGS_PACKAGE = "@cdktf/provider-azurerm"
BINDINGS_DIR = ROOT / "node_modules" / "@cdktf" / "provider-azurerm"

META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
DYNAMIC_ARGUMENTS = {"for_each", "iterator", "labels", "content"}

DOC_LINK = re.compile(
    r"registry\.terraform\.io/providers/hashicorp/azurerm/(?P<version>[0-9.]+)/docs"
    r"(?:/(?P<kind>resources|data-sources)/(?P<type>\w+))?#(?P<attr>\w+)"
)


@dataclass
class Block:
    """One schema level: its arguments (attributes) and nested blocks, and which of them are required."""

    attributes: set[str] = field(default_factory=set)
    blocks: dict[str, Block] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    # Attributes readable from other expressions (arguments + computed attributes), top level only.
    readable: set[str] = field(default_factory=set)


@dataclass
class Schema:
    """Every resource and data source of the provider, by Terraform type name, and its own configuration."""

    provider_version: str
    resources: dict[str, Block]
    data_sources: dict[str, Block]
    provider: Block


class BindingsMissing(RuntimeError):
    """The pinned bindings package is not installed (npm ci not run)."""


def bindings_package_json() -> dict[str, Any]:
    path = BINDINGS_DIR / "package.json"
    if not path.is_file():
        raise BindingsMissing(
            f"{BINDINGS_PACKAGE} is not installed under node_modules: run `npm ci` (make install does) to get "
            "the azurerm schema that tests/infra checks infra/terraform against."
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _struct_fqn(type_ref: dict[str, Any], types: dict[str, Any]) -> str | None:
    """The fqn of the nested-block struct a property refers to, or None for a plain attribute."""
    if "fqn" in type_ref:
        fqn = type_ref["fqn"]
        found = types.get(fqn)
        return fqn if found and found.get("datatype") else None
    if "union" in type_ref:
        for option in type_ref["union"]["types"]:
            fqn = _struct_fqn(option, types)
            if fqn:
                return fqn
        return None
    if "collection" in type_ref:
        return _struct_fqn(type_ref["collection"]["elementtype"], types)
    return None


def _block_from_struct(fqn: str, types: dict[str, Any], depth: int = 0) -> tuple[Block, str | None, str | None]:
    """Translate a jsii Config/struct interface into a Block; also return the resource kind and type."""
    assert depth < 20, f"nesting too deep at {fqn}"
    block = Block()
    kind = rtype = None
    for prop in types[fqn].get("properties", []):
        docs = prop.get("docs", {})
        summary = f"{docs.get('summary', '')} {docs.get('remarks', '')}"
        match = DOC_LINK.search(summary)
        if not match:
            continue
        kind, rtype = match.group("kind"), match.group("type")
        name = match.group("attr")
        nested = _struct_fqn(prop["type"], types)
        if nested is not None:
            block.blocks[name], _, _ = _block_from_struct(nested, types, depth + 1)
        else:
            block.attributes.add(name)
        if not prop.get("optional"):
            block.required.add(name)
    return block, kind, rtype


@cache
def azurerm_schema() -> Schema:
    meta = bindings_package_json()
    version = str(meta["cdktf"]["provider"]["version"])
    jsii = json.loads((BINDINGS_DIR / ".jsii").read_text(encoding="utf-8"))
    types: dict[str, Any] = jsii["types"]
    resources: dict[str, Block] = {}
    data_sources: dict[str, Block] = {}
    for fqn, entry in types.items():
        if entry.get("kind") != "interface" or not entry.get("datatype") or not fqn.endswith("Config"):
            continue
        # Only a resource's or data source's own Config: its class (same name without "Config") declares
        # tfResourceType. Nested blocks can end in "Config" too (e.g. ...SiteConfig) and are reached
        # through their parent instead.
        klass = types.get(fqn[: -len("Config")])
        if not klass or klass.get("kind") != "class":
            continue
        if not any(p["name"] == "tfResourceType" and p.get("static") for p in klass.get("properties", [])):
            continue
        block, kind, rtype = _block_from_struct(fqn, types)
        if kind is None or rtype is None:
            continue
        getters = {p["name"] for p in klass.get("properties", []) if not p.get("static")}
        candidates = block.attributes | set(block.blocks) | {"id"}
        # Computed attributes have no Config property; accept any name whose camelCase is a getter.
        block.readable = getters
        block.readable |= {snake_to_camel(n) for n in candidates}
        target = resources if kind == "resources" else data_sources
        assert f"azurerm_{rtype}" not in target, f"two Config types for azurerm_{rtype}"
        target[f"azurerm_{rtype}"] = block
    assert len(resources) > 500, f"only {len(resources)} azurerm resources read from {BINDINGS_DIR}"
    provider, _, _ = _block_from_struct(f"{BINDINGS_PACKAGE}.provider.AzurermProviderConfig", types)
    assert "features" in provider.blocks, "provider configuration not read from the bindings"
    return Schema(provider_version=version, resources=resources, data_sources=data_sources, provider=provider)


def _azapi_common() -> Block:
    timeouts = Block(attributes={"create", "delete", "read", "update"})
    return Block(
        attributes={
            "type",
            "body",
            "ignore_casing",
            "ignore_missing_property",
            "locks",
            "name",
            "parent_id",
            "read_headers",
            "read_query_parameters",
            "response_export_values",
            "retry",  # an object attribute in azapi 2.x, not a block
            "sensitive_body",
            "sensitive_body_version",
            "update_headers",
            "update_query_parameters",
        },
        blocks={"timeouts": timeouts},
        required={"type"},
        readable={"id", "name", "output", "parentId", "type", "body"},
    )


@cache
def azapi_schema() -> dict[str, Block]:
    """azapi 2.8.0: azapi_resource and azapi_update_resource."""
    resource = _azapi_common()
    resource.attributes |= {
        "create_headers",
        "create_query_parameters",
        "delete_headers",
        "delete_query_parameters",
        "ignore_null_property",
        "location",
        "replace_triggers_external_values",
        "replace_triggers_refs",
        "schema_validation_enabled",
        "tags",
    }
    resource.blocks["identity"] = Block(attributes={"type", "identity_ids"}, required={"type"})
    resource.readable |= {"identity", "location", "tags"}
    update = _azapi_common()
    update.attributes |= {"resource_id"}
    update.readable |= {"resourceId"}
    return {"azapi_resource": resource, "azapi_update_resource": update}


# The module configures azapi with no arguments (it signs in like azurerm); any argument is reported.
AZAPI_PROVIDER = Block()


# --------------------------------------------------------------------------------------------------
# Checking a module directory
# --------------------------------------------------------------------------------------------------


def load_module(tf_dir: Path) -> dict[str, dict[str, Any]]:
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=True, with_comments=False)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(tf_dir.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            out[path.name] = hcl2.load(fh, serialization_options=options)
    return out


def _is_block(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def _check_body(where: str, body: dict[str, Any], schema: Block, errors: list[str], *, top: bool) -> None:
    present: set[str] = set()
    for key, value in body.items():
        if key.startswith("__"):
            continue
        if top and key in META_ARGUMENTS:
            continue
        if key == "dynamic":
            for entry in value:
                for name, dyn in entry.items():
                    if name.startswith("__"):
                        continue
                    present.add(name)
                    unknown = {k for k in dyn if not k.startswith("__")} - DYNAMIC_ARGUMENTS
                    if unknown:
                        errors.append(f"{where}: dynamic {name!r} has unknown arguments {sorted(unknown)}")
                    if name not in schema.blocks:
                        errors.append(f"{where}: dynamic block {name!r} is not a block of this schema")
                        continue
                    for content in dyn.get("content", []):
                        _check_body(f"{where}.{name}", content, schema.blocks[name], errors, top=False)
            continue
        present.add(key)
        if _is_block(value):
            if key in schema.blocks:
                for item in value:
                    _check_body(f"{where}.{key}", item, schema.blocks[key], errors, top=False)
            elif key in schema.attributes:
                errors.append(f"{where}: {key!r} is an argument, not a block (write {key} = ...)")
            else:
                errors.append(f"{where}: unknown block {key!r}")
        elif key in schema.attributes:
            continue
        elif key in schema.blocks:
            errors.append(f"{where}: {key!r} is a block, not an argument (write {key} {{ ... }})")
        else:
            errors.append(f"{where}: unknown argument {key!r}")
    missing = schema.required - present
    if missing:
        errors.append(f"{where}: required arguments/blocks missing: {sorted(missing)}")


REFERENCE = re.compile(r"\b((?:data\.)?(?:azurerm|azapi)_\w+)\.(\w+)(?:\[[^\]]*\])?\.(\w+)")


def all_strings(node: Any) -> Iterator[str]:
    """Every string in parsed HCL: values and keys, depth first."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from all_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_strings(item)


def check_module(tf_dir: Path) -> list[str]:
    """Every problem found in tf_dir's resources, data sources and references; empty when clean."""
    schema = azurerm_schema()
    azapi = azapi_schema()
    errors: list[str] = []
    declared: dict[tuple[str, str], str] = {}
    docs = load_module(tf_dir)
    providers = {"azurerm": schema.provider, "azapi": AZAPI_PROVIDER}
    for filename, doc in docs.items():
        for entry in doc.get("provider", []):
            for pname, body in entry.items():
                if pname.startswith("__"):
                    continue
                if pname not in providers:
                    errors.append(f"{filename}: provider {pname!r} is not one this module pins")
                    continue
                _check_body(f"{filename}: provider {pname}", body, providers[pname], errors, top=False)
        for kind in ("resource", "data"):
            for entry in doc.get(kind, []):
                for rtype, named in entry.items():
                    if rtype.startswith("__"):
                        continue
                    for name, body in named.items():
                        if name.startswith("__"):
                            continue
                        where = f"{filename}: {'data.' if kind == 'data' else ''}{rtype}.{name}"
                        key = (f"data.{rtype}" if kind == "data" else rtype, name)
                        declared[key] = rtype
                        if kind == "data":
                            block = schema.data_sources.get(rtype)
                        else:
                            block = schema.resources.get(rtype) or azapi.get(rtype)
                        if block is None:
                            errors.append(f"{where}: unknown {'data source' if kind == 'data' else 'resource'} type")
                            continue
                        _check_body(where, body, block, errors, top=True)
    # References such as azurerm_storage_account.images.primary_blob_endpoint must name a declared
    # resource and an attribute it exposes.
    for filename, doc in docs.items():
        for text in all_strings(doc):
            for match in REFERENCE.finditer(text):
                rtype, name, attr = match.groups()
                bare = rtype.removeprefix("data.")
                if (rtype, name) not in declared:
                    errors.append(f"{filename}: reference to undeclared {rtype}.{name}")
                    continue
                if rtype.startswith("data."):
                    block = schema.data_sources.get(bare)
                else:
                    block = schema.resources.get(bare) or azapi.get(bare)
                if block is not None and snake_to_camel(attr) not in block.readable:
                    errors.append(f"{filename}: {rtype}.{name}.{attr}: {bare} has no attribute {attr!r}")
    return errors
