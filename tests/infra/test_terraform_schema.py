"""infra/terraform against the provider schemas, offline (the schema half of `terraform validate`).

Every provider configuration, resource and data source type, argument, nested block (also inside `dynamic`)
and attribute reference is checked against azurerm 4.55.0 (the floor of terraform.tf's range, read from the pinned
@cdktf/provider-azurerm bindings) and azapi 2.8.0; see provider_schema.py for where each schema comes from.
A misspelled name fails: the negative tests below break a copy of the module and expect the failure.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.infra import provider_schema
from tests.infra.provider_schema import BINDINGS_PACKAGE, BindingsMissing, check_module

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"
PINNED_BINDINGS = "14.23.1"
AZURERM_FLOOR = "4.55.0"
AZAPI_FLOOR = "2.8.0"


@pytest.fixture(scope="module")
def schema() -> provider_schema.Schema:
    try:
        return provider_schema.azurerm_schema()
    except BindingsMissing as exc:
        pytest.fail(str(exc))


def version_range(provider: str) -> str:
    text = (TF_DIR / "terraform.tf").read_text(encoding="utf-8")
    match = re.search(provider + r'\s*=\s*\{[^}]*?version\s*=\s*"([^"]+)"', text, re.DOTALL)
    assert match, f"terraform.tf does not pin {provider}"
    return match.group(1)


def test_bindings_are_pinned_and_match_the_provider_floor(schema: provider_schema.Schema) -> None:
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"].get(BINDINGS_PACKAGE) == PINNED_BINDINGS, "pin the bindings exactly"
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][f"node_modules/{BINDINGS_PACKAGE}"]["version"] == PINNED_BINDINGS
    installed = provider_schema.bindings_package_json()
    assert installed["version"] == PINNED_BINDINGS, "node_modules is stale: run npm ci"
    assert schema.provider_version == AZURERM_FLOOR
    # The schema checked here is the oldest azurerm `terraform init` may choose, and 5.x is excluded.
    assert version_range("azurerm") == f">= {AZURERM_FLOOR}, < 5.0.0"
    assert version_range("azapi") == f">= {AZAPI_FLOOR}, < 3.0.0"


def test_the_floor_has_what_the_issue_names(schema: provider_schema.Schema) -> None:
    """Arguments that set the floor: enabled_metric (4.31) and source_resource_id (4.40) exist in it."""
    assert "enabled_metric" in schema.resources["azurerm_monitor_diagnostic_setting"].blocks
    assert "source_resource_id" in schema.resources["azurerm_eventgrid_system_topic"].attributes
    cors = schema.resources["azurerm_storage_account"].blocks["blob_properties"].blocks["cors_rule"]
    assert {"allowed_origins", "allowed_methods", "allowed_headers", "exposed_headers"} <= cors.attributes
    # local_authentication_enabled arrives in 4.78; the floor offers only local_authentication_disabled.
    for rtype in ("azurerm_cosmosdb_account", "azurerm_application_insights"):
        assert "local_authentication_disabled" in schema.resources[rtype].attributes
        assert "local_authentication_enabled" not in schema.resources[rtype].attributes
    # azurerm has no full-text policy on SQL containers: that is why the container is an azapi resource.
    container = schema.resources["azurerm_cosmosdb_sql_container"]
    assert not {n for n in container.attributes | set(container.blocks) if "full_text" in n}


def test_module_matches_the_provider_schemas(schema: provider_schema.Schema) -> None:
    errors = check_module(TF_DIR)
    assert not errors, "infra/terraform does not match the provider schemas:\n" + "\n".join(errors)


def broken_copy(tmp_path: Path, filename: str, old: str, new: str) -> Path:
    target = tmp_path / "terraform"
    shutil.copytree(TF_DIR, target)
    path = target / filename
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not found in {filename}: update this negative test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    ("filename", "old", "new", "expected"),
    [
        # a misspelled argument (and so a required one missing)
        (
            "main.storage.tf",
            "account_replication_type",
            "account_replicaton_type",
            "unknown argument 'account_replicaton_type'",
        ),
        # a misspelled nested block
        (
            "main.storage.tf",
            "delete_retention_policy {",
            "delete_retension_policy {",
            "unknown block 'delete_retension_policy'",
        ),
        # a misspelled block inside `dynamic`
        ("main.storage.tf", 'dynamic "cors_rule"', 'dynamic "cors_rules"', "dynamic block 'cors_rules'"),
        # a misspelled argument inside a dynamic block's content
        ("main.storage.tf", "max_age_in_seconds =", "max_age_seconds =", "unknown argument 'max_age_seconds'"),
        # a block written as an argument
        ("main.cosmos.tf", "consistency_policy {", "consistency_policy = {", "is a block, not an argument"),
        # a misspelled provider feature
        (
            "terraform.tf",
            "purge_soft_delete_on_destroy",
            "purge_soft_deleted_on_destroy",
            "unknown argument 'purge_soft_deleted_on_destroy'",
        ),
        # a resource type that does not exist
        (
            "main.monitoring.tf",
            '"azurerm_application_insights" "main"',
            '"azurerm_app_insights" "main"',
            "unknown resource type",
        ),
        # an azapi argument
        (
            "main.functions.tf",
            "response_export_values",
            "response_export_value",
            "unknown argument 'response_export_value'",
        ),
        # a reference to an attribute the resource does not export
        (
            "main.functions.tf",
            "azurerm_cosmosdb_account.main.endpoint",
            "azurerm_cosmosdb_account.main.endpoints",
            "has no attribute 'endpoints'",
        ),
        # a reference to a resource that is not declared
        (
            "main.identity.tf",
            "azurerm_storage_account.images.id",
            "azurerm_storage_account.image.id",
            "undeclared azurerm_storage_account.image",
        ),
    ],
)
def test_a_misspelled_name_fails(
    schema: provider_schema.Schema, tmp_path: Path, filename: str, old: str, new: str, expected: str
) -> None:
    errors = check_module(broken_copy(tmp_path, filename, old, new))
    assert any(expected in e for e in errors), f"expected {expected!r} among {errors}"
