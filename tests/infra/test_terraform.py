"""Static checks of infra/terraform: parse the HCL (python-hcl2) and assert the wiring against the app.

No Terraform binary or provider can be downloaded here, so these tests stand in for `terraform validate`
on the things that matter: function names, app settings (and no AzureWebJobsStorage connection string on
the live app), identity-only access, least-privilege roles, the Event Grid subscription being exactly
config/eventgrid-subscriptions.json, the CORS rule being config/cors.json, the vision quota split, and
Cosmos DB full-text search. test_terraform_schema.py checks every name against the provider schemas.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from tests.infra.provider_schema import all_strings

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"
EVENTGRID_JSON = ROOT / "config" / "eventgrid-subscriptions.json"
CONTRACTS = ROOT / "docs" / "contracts.md"
HOST_JSON = ROOT / "host.json"
CORS_JSON = ROOT / "config" / "cors.json"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

EXPECTED_FILES = [
    "terraform.tf",
    "main.tf",
    "main.storage.tf",
    "main.events.tf",
    "main.cosmos.tf",
    "main.vision.tf",
    "main.documents.tf",
    "main.functions.tf",
    "main.monitoring.tf",
    "main.identity.tf",
    "variables.tf",
    "outputs.tf",
    "terraform.tfvars.example",
]

APP = "${local.app_principal_id}"
EVENTGRID = "${local.eventgrid_principal_id}"
# The Azure RBAC roles are local.role_assignments (main.identity.tf), read from the HCL: no copy here. What
# the tests hold is the rule: the app gets, on the service each app setting points it at, the data roles
# the client of that setting needs, and nothing else.
ROLES_BY_SETTING: dict[str, set[str]] = {
    # images and dead letters (imagepipe/adapters/azure_blob.py), and the user-delegation key of upload URLs
    "IMAGES_STORAGE__blobServiceUri": {"Storage Blob Data Contributor", "Storage Blob Delegator"},
    # the Functions host and the Durable task hub: blobs (leases need Owner), queues, tables
    "AzureWebJobsStorage__accountName": {
        "Storage Blob Data Owner",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
    },
    "VISION__endpoint": {"Cognitive Services User"},
    # document fields (imagepipe/adapters/azure_documents.py): analyze with prebuilt models and query fields
    "DOCUMENT_INTELLIGENCE__endpoint": {"Cognitive Services User"},
    # telemetry with an Entra ID token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD)
    "APPLICATIONINSIGHTS_CONNECTION_STRING": {"Monitoring Metrics Publisher"},
}
#: scopes an assignment may have: one resource's id, never a resource group or subscription
RESOURCE_SCOPE = re.compile(
    r"\$\{(azurerm_(?:storage_account|storage_container|cognitive_account|application_insights)\.\w+)\.id\}"
)
#: the role assignments that were one resource block each before the for_each (moved blocks keep them)
BEFORE_FOR_EACH = {
    "app_images_blob_data_contributor",
    "app_images_blob_delegator",
    "app_runtime_blob_data_owner",
    "app_runtime_queue_data_contributor",
    "app_runtime_table_data_contributor",
    "app_vision_user",
    "app_monitoring_metrics_publisher",
    "eventgrid_deadletter_writer",
}

# Settings the app needs in Azure mode (imagepipe/settings.py) and the Terraform value each must have.
AZURE_MODE_SETTINGS: dict[str, str] = {
    "IMAGES_STORAGE__blobServiceUri": '${trimsuffix(azurerm_storage_account.images.primary_blob_endpoint, "/")}',
    "IMAGES_CONTAINER": "${azurerm_storage_container.images.name}",
    "RECORD_STORE": "cosmos",
    "COSMOS__accountEndpoint": "${azurerm_cosmosdb_account.main.endpoint}",
    "COSMOS_DATABASE": "${azurerm_cosmosdb_sql_database.main.name}",
    "COSMOS_CONTAINER": "${azapi_resource.cosmos_images_container.name}",
    "COSMOS_LABELSETS_CONTAINER": "${azapi_resource.cosmos_labelsets_container.name}",
    "CUSTOM_LABELS_MODEL_DIR": "imagepipe/vision/models",
    "VISION_PROVIDER": "azure",
    "VISION__endpoint": "${azurerm_cognitive_account.vision.endpoint}",
    "DOCUMENT_FIELDS_PROVIDER": "azure",
    "DOCUMENT_INTELLIGENCE__endpoint": "${azurerm_cognitive_account.documents.endpoint}",
}
# App settings read by the Functions host or by binding expressions, not by the Settings class.
HOST_SETTINGS: dict[str, str] = {
    "AzureWebJobsStorage__accountName": "${azurerm_storage_account.runtime.name}",
    "AzureWebJobsStorage__credential": "managedidentity",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "${azurerm_application_insights.main.connection_string}",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD",
    "RECONCILE_SCHEDULE": "${var.reconcile_schedule}",
}
# Each instance's share of the AI Vision quota (main.vision.tf), read by the vision adapter.
VISION_QUOTA_SETTINGS: dict[str, str] = {
    "VISION_MAX_CONCURRENCY": "${tostring(local.vision_max_concurrency_per_instance)}",
    "VISION_RATE_LIMIT_PER_SECOND": "${local.vision_rate_limit_per_instance}",
}
# The telemetry endpoint is the one setting named like a credential; it is not one (App Insights local
# auth is disabled, so only Entra ID tokens are accepted).
APP_INSIGHTS_CONNECTION = "${azurerm_application_insights.main.connection_string}"

SECRET_NAME = re.compile(r"key|secret|password|sas|token|connection_?string|credential", re.IGNORECASE)
SECRET_VALUE = re.compile(
    r"AccountKey=|SharedAccessSignature|[?&]sig=|primary_access_key|secondary_access_key|connection_string"
    r"|primary_key|secondary_key|instrumentation_key|_sas\b|listkeys",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------------------


@cache
def parsed() -> dict[str, dict[str, Any]]:
    """Every .tf file of the module, parsed with plain (unquoted) strings and no block markers."""
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(TF_DIR.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            out[path.name] = hcl2.load(fh, serialization_options=options)
    return out


def blocks(kind: str) -> Iterator[Any]:
    for doc in parsed().values():
        yield from doc.get(kind, [])


@cache
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in blocks("resource"):
        for rtype, named in entry.items():
            for name, body in named.items():
                assert (rtype, name) not in out, f"duplicate resource {rtype}.{name}"
                out[(rtype, name)] = body
    return out


def resource(rtype: str, name: str) -> dict[str, Any]:
    found = resources().get((rtype, name))
    assert found is not None, f"infra/terraform has no resource {rtype}.{name}"
    return found


def of_type(rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for (t, name), body in resources().items() if t == rtype}


@cache
def variables() -> dict[str, dict[str, Any]]:
    return {name: body for entry in blocks("variable") for name, body in entry.items()}


@cache
def outputs() -> dict[str, dict[str, Any]]:
    return {name: body for entry in blocks("output") for name, body in entry.items()}


@cache
def locals_() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in blocks("locals"):
        merged.update(entry)
    return merged


def first(value: Any) -> dict[str, Any]:
    """A nested block parses as a list of bodies; return the single one."""
    assert isinstance(value, list) and len(value) == 1, f"expected exactly one block, got {value!r}"
    assert isinstance(value[0], dict)
    return value[0]


@cache
def eventgrid_json() -> dict[str, Any]:
    data = json.loads(EVENTGRID_JSON.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    subs = data["subscriptions"]
    assert len(subs) == 1, "config/eventgrid-subscriptions.json must hold exactly one subscription"
    sub = subs[0]
    assert isinstance(sub, dict)
    return sub


def function_app() -> dict[str, Any]:
    return resource("azapi_resource", "function_app")


def site_properties() -> dict[str, Any]:
    app = function_app()
    assert app["type"] == "Microsoft.Web/sites@2024-04-01"
    props = app["body"]["properties"]
    assert isinstance(props, dict)
    return props


APP_SETTINGS_EXPR = "${[for name, value in local.function_app_settings : {name = name, value = value}]}"


def app_settings() -> dict[str, Any]:
    """The site's app settings: siteConfig.appSettings is exactly local.function_app_settings."""
    assert site_properties()["siteConfig"]["appSettings"] == APP_SETTINGS_EXPR
    settings = locals_()["function_app_settings"]
    assert isinstance(settings, dict)
    return settings


def resolve_subscription_ref(expr: str) -> Any:
    """Evaluate `${local.event_subscription.<field>}` against the JSON file; anything else fails."""
    match = re.fullmatch(r"\$\{local\.event_subscription\.(\w+)\}", expr)
    assert match, f"{expr!r} does not read config/eventgrid-subscriptions.json"
    return eventgrid_json()[match.group(1)]


# --------------------------------------------------------------------------------------------------
# Layout, provider, variables, outputs
# --------------------------------------------------------------------------------------------------


def test_layout_and_every_file_parses() -> None:
    missing = [name for name in EXPECTED_FILES if not (TF_DIR / name).is_file()]
    assert not missing, f"missing files in infra/terraform: {missing}"
    assert set(parsed()) >= {n for n in EXPECTED_FILES if n.endswith(".tf")}
    with (TF_DIR / "terraform.tfvars.example").open(encoding="utf-8") as fh:
        example = hcl2.load(fh, serialization_options=SerializationOptions(strip_string_quotes=True))
    unknown = set(example) - set(variables()) - {"__comments__", "__inline_comments__"}
    assert not unknown, f"terraform.tfvars.example sets undeclared variables: {unknown}"


def test_provider_is_pinned_and_storage_calls_use_entra_id() -> None:
    terraform = first(parsed()["terraform.tf"]["terraform"])
    providers = first(terraform["required_providers"])
    azurerm = providers["azurerm"]
    assert azurerm["source"] == "hashicorp/azurerm"
    assert re.fullmatch(r">= 4\.\d+\.\d+, < 5\.0\.0", azurerm["version"]), azurerm["version"]
    azapi = providers["azapi"]
    assert azapi["source"] == "Azure/azapi"
    assert re.fullmatch(r">= 2\.\d+\.\d+, < 3\.0\.0", azapi["version"]), azapi["version"]
    assert "required_version" in terraform
    configured = {name: body for entry in parsed()["terraform.tf"]["provider"] for name, body in entry.items()}
    assert configured["azurerm"]["storage_use_azuread"] is True
    assert set(configured) == {"azurerm", "azapi"}


def test_variables_are_snake_case_typed_described_and_validated() -> None:
    assert variables(), "no variables parsed"
    for name, body in variables().items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"variable {name} is not snake_case"
        assert "type" in body, f"variable {name} has no type"
        assert len(str(body.get("description", ""))) >= 20, f"variable {name} has no real description"
        if body["type"] != "bool":
            assert body.get("validation"), f"variable {name} has no validation block"
            for rule in body["validation"]:
                assert rule.get("condition") and rule.get("error_message"), f"variable {name}: empty validation"


def test_outputs_are_described_and_cover_what_a_deployer_needs() -> None:
    for name, body in outputs().items():
        assert len(str(body.get("description", ""))) >= 15, f"output {name} has no description"
        assert not body.get("sensitive"), f"output {name} is sensitive: outputs must not carry secrets"
        assert not any(SECRET_VALUE.search(s) for s in all_strings(body["value"])), f"output {name} leaks a secret"
    required = {
        "api_base_url",
        "function_app_name",
        "images_blob_endpoint",
        "cosmos_endpoint",
        "vision_endpoint",
        "documents_endpoint",
    }
    assert required <= set(outputs()), f"missing outputs: {required - set(outputs())}"
    assert outputs()["api_base_url"]["value"].endswith("/api")


# --------------------------------------------------------------------------------------------------
# Functions: Terraform's references vs docs/contracts.md vs function_app.py
# --------------------------------------------------------------------------------------------------


def terraform_function_names() -> set[str]:
    names: set[str] = set()
    for body in resources().values():
        for text in all_strings(body):
            for match in re.finditer(r"/functions/([^/\s\"}]+)", text):
                ref = match.group(1)
                if ref.startswith("${"):
                    continue
                names.add(ref)
            for match in re.finditer(r"/functions/(\$\{local\.event_subscription\.\w+\})", text):
                names.add(str(resolve_subscription_ref(match.group(1))))
    return names


def contract_function_names() -> set[str]:
    text = CONTRACTS.read_text(encoding="utf-8")
    section = text.split("## Functions", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([a-z][a-z0-9_]*)`", first_cell))
            names.update(re.findall(r"\b([a-z]+(?:_[a-z0-9]+)+)\b", first_cell))
    return names


def app_function_names() -> set[str]:
    """Import function_app in a child process (clean sys.modules) and list its registered functions."""
    code = (
        "import json, function_app\n"
        "print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(
            "function_app.py could not be imported, so the function names Terraform references cannot be "
            f"checked against the app. Fix the import first:\n{proc.stderr[-2000:]}"
        )
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    assert isinstance(names, list)
    return set(names)


def test_event_subscription_targets_the_starter_function() -> None:
    assert eventgrid_json()["function"] == "on_image_blob_created"
    sub = resource("azurerm_eventgrid_system_topic_event_subscription", "images_blob_created")
    endpoint = first(sub["azure_function_endpoint"])
    assert endpoint["function_id"] == (
        "${azapi_resource.function_app.id}/functions/${local.event_subscription.function}"
    )
    assert terraform_function_names() == {"on_image_blob_created"}


def test_terraform_function_names_are_in_the_contract_table() -> None:
    names = terraform_function_names()
    contract = contract_function_names()
    assert "upload_image" in contract and "on_image_blob_created" in contract, "contracts table not parsed"
    assert names <= contract, f"Terraform references functions missing from docs/contracts.md: {names - contract}"


def test_terraform_function_names_are_registered_by_the_app() -> None:
    names = terraform_function_names()
    registered = app_function_names()
    assert names <= registered, (
        f"Terraform references functions function_app.py does not register: {names - registered}"
    )


# --------------------------------------------------------------------------------------------------
# App settings: complete for Azure mode, endpoints only
# --------------------------------------------------------------------------------------------------


def test_app_settings_set_everything_azure_mode_needs() -> None:
    settings = app_settings()
    for name, expected in {**AZURE_MODE_SETTINGS, **HOST_SETTINGS, **VISION_QUOTA_SETTINGS}.items():
        assert settings.get(name) == expected, f"app setting {name} = {settings.get(name)!r}, expected {expected!r}"
    extra = set(settings) - set(AZURE_MODE_SETTINGS) - set(HOST_SETTINGS) - set(VISION_QUOTA_SETTINGS)
    assert not extra, f"unexpected app settings (add them to this test with their reason): {extra}"


def test_app_settings_satisfy_the_settings_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """Feed Terraform's app settings (references replaced by sample values) to imagepipe.settings."""
    from imagepipe import settings as settings_module

    aliases: set[str] = set()
    for field in settings_module.Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            aliases.add(alias)
        elif alias is not None:
            aliases.update(str(choice) for choice in alias.choices)
    assert set(AZURE_MODE_SETTINGS) <= aliases, f"not Settings names: {set(AZURE_MODE_SETTINGS) - aliases}"
    for name in aliases:
        monkeypatch.delenv(name, raising=False)

    samples = {
        "IMAGES_STORAGE__blobServiceUri": "https://imagepipeimgabc123.blob.core.windows.net",
        "IMAGES_CONTAINER": "images",
        "COSMOS__accountEndpoint": "https://cosmos-imagepipe-dev-abc123.documents.azure.com:443/",
        "COSMOS_DATABASE": "imagepipe",
        "COSMOS_CONTAINER": "images",
        "COSMOS_LABELSETS_CONTAINER": "labelsets",
        "VISION__endpoint": "https://vision-imagepipe-dev-abc123.cognitiveservices.azure.com/",
        "DOCUMENT_INTELLIGENCE__endpoint": "https://docs-imagepipe-dev-abc123.cognitiveservices.azure.com/",
        "VISION_MAX_CONCURRENCY": "1",
        "VISION_RATE_LIMIT_PER_SECOND": "0.500000",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    }
    for name, value in app_settings().items():
        if name in aliases:
            monkeypatch.setenv(name, samples[name] if "${" in str(value) else str(value))
    loaded = settings_module.load_settings()
    assert loaded.record_store == "cosmos"
    assert loaded.vision_provider == "azure"
    assert loaded.images_storage_connection_string is None
    assert loaded.images_storage_blob_service_uri and loaded.cosmos_endpoint and loaded.vision_endpoint
    assert loaded.document_fields_provider == "azure" and loaded.document_intelligence_endpoint


def test_no_secret_key_sas_or_connection_string_in_app_settings() -> None:
    for name, value in app_settings().items():
        if name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
            # The one connection string (telemetry endpoint) is not a credential: App Insights local auth is off.
            assert value == APP_INSIGHTS_CONNECTION
            continue
        if name == "AzureWebJobsStorage__credential":
            # Not a secret: names the token source (the app's managed identity).
            assert value == "managedidentity"
            continue
        assert not SECRET_NAME.search(name) or name == "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", name
        assert not SECRET_VALUE.search(str(value)), f"app setting {name} carries a credential: {value}"
    for text in all_strings(function_app()):
        assert not SECRET_VALUE.search(text), f"credential reference in the function app: {text}"
    storage = site_properties()["functionAppConfig"]["deployment"]["storage"]
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}, "deployment storage must use the identity"
    # No basic-auth publishing credentials (SCM and FTP).
    policies = resource("azapi_resource", "function_app_basic_auth_off")
    assert policies["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01"
    assert policies["for_each"] == '${toset(["scm", "ftp"])}'
    assert policies["parent_id"] == "${azapi_resource.function_app.id}"
    assert policies["body"] == {"properties": {"allow": False}}
    assert resource("azurerm_application_insights", "main")["local_authentication_disabled"] is True


def test_live_app_can_never_hold_an_azurewebjobsstorage_connection_string() -> None:
    """Defect 9.1: azurerm's Flex Consumption resource writes AzureWebJobsStorage with an empty key.

    That setting would beat the AzureWebJobsStorage__* identity settings. The module must leave no path
    by which it reaches the live app: no azurerm function/web app resource at all (each writes it, on
    create and on every update), one ARM site whose complete app settings are the local map, no other
    resource writing site config or app settings, and no exact AzureWebJobsStorage name anywhere.
    """
    for rtype, name in resources():
        assert not re.search(r"function_app|web_app|app_service(?!_plan)", rtype), (
            f"{rtype}.{name}: azurerm's app resources write their own app settings; "
            "the site is azapi_resource.function_app"
        )
    sites = [
        key for key, body in resources().items() if str(body.get("type", "")).lower().startswith("microsoft.web/sites@")
    ]
    assert sites == [("azapi_resource", "function_app")], sites
    for (rtype, name), body in resources().items():
        target = str(body.get("type", "")).lower()
        if (rtype, name) != ("azapi_resource", "function_app"):
            assert not target.startswith("microsoft.web/sites/config"), f"{rtype}.{name} writes site config"
        assert rtype not in {"azapi_resource_action", "azapi_update_resource"} or "microsoft.web" not in target, (
            f"{rtype}.{name} changes the site outside its one PUT"
        )
    # The site's app settings are exactly the local map, sent whole on create and on every update.
    settings = app_settings()
    assert not [n for n in settings if n.lower() == "azurewebjobsstorage"], "exact AzureWebJobsStorage setting"
    assert settings["AzureWebJobsStorage__accountName"] == "${azurerm_storage_account.runtime.name}"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    # Nowhere in the module is there an exact AzureWebJobsStorage name (only the __ prefix settings).
    for doc in parsed().values():
        for text in all_strings(doc):
            assert not re.search(r"AzureWebJobsStorage(?!__)", text, re.IGNORECASE), (
                f"exact AzureWebJobsStorage in infra/terraform: {text!r}"
            )
    # The deployment package storage uses the identity too (no DEPLOYMENT_STORAGE_CONNECTION_STRING).
    storage = site_properties()["functionAppConfig"]["deployment"]["storage"]
    assert "storageAccountConnectionStringName" not in storage["authentication"]


def test_no_key_or_sas_anywhere_in_the_module() -> None:
    for (rtype, name), body in resources().items():
        assert "sas" not in rtype.split("_"), f"{rtype}.{name} produces a SAS"
        for text in all_strings(body):
            if text == "${azurerm_application_insights.main.connection_string}":
                continue
            if text == "application_insights_connection_string":
                continue
            assert not SECRET_VALUE.search(text), f"{rtype}.{name} references a credential: {text}"
    data_sources = {t for entry in blocks("data") for t in entry}
    assert not {t for t in data_sources if "sas" in t or "key" in t}, data_sources


# --------------------------------------------------------------------------------------------------
# Identity: least-privilege role assignments
# --------------------------------------------------------------------------------------------------


def role_assignments() -> dict[str, dict[str, str]]:
    """local.role_assignments: key -> role, scope, principal, why (a heredoc's markers and indent removed)."""
    found = locals_()["role_assignments"]
    assert isinstance(found, dict) and found, "main.identity.tf has no local.role_assignments map"
    out = {}
    for key, entry in found.items():
        assert set(entry) == {"role", "scope", "principal", "why"}, f"{key}: fields {sorted(entry)}"
        why = re.sub(r"^<<-?EOT\n|\n\s*EOT$", "", entry["why"])
        out[key] = {**entry, "why": " ".join(why.split())}
    return out


def address_of(expr: str) -> str:
    """The resource (type.name) an expression such as ${trimsuffix(azurerm_x.y.endpoint, "/")} reads."""
    match = re.search(r"\b(azurerm_\w+\.\w+)\.\w+", expr)
    assert match, f"{expr!r} references no azurerm resource"
    return match.group(1)


def test_role_assignments_are_one_for_each_over_the_map() -> None:
    found = of_type("azurerm_role_assignment")
    assert set(found) == {"this"}, f"Azure RBAC assignments belong in local.role_assignments, found {sorted(found)}"
    assert found["this"] == {
        "for_each": "${local.role_assignments}",
        "scope": "${each.value.scope}",
        "role_definition_name": "${each.value.role}",
        "principal_id": "${each.value.principal}",
        "principal_type": "ServicePrincipal",
    }
    assert locals_()["app_principal_id"] == "${azapi_resource.function_app.identity[0].principal_id}"
    assert locals_()["eventgrid_principal_id"] == "${azurerm_eventgrid_system_topic.images.identity[0].principal_id}"


def test_every_role_assignment_is_a_data_role_on_one_resource_and_says_why() -> None:
    data_roles = set().union(*ROLES_BY_SETTING.values())
    seen = set()
    for key, entry in role_assignments().items():
        assert entry["role"] in data_roles, f"{key}: {entry['role']!r} is not a data-plane role this app uses"
        assert RESOURCE_SCOPE.fullmatch(entry["scope"]), f"{key}: scope {entry['scope']!r} is not one resource"
        assert entry["principal"] in (APP, EVENTGRID), f"{key}: principal {entry['principal']!r}"
        assert len(entry["why"]) > 20, f"{key}: say why the role is needed"
        triple = (entry["role"], entry["scope"], entry["principal"])
        assert triple not in seen, f"{key} repeats {triple}"
        seen.add(triple)


def test_the_app_holds_exactly_the_roles_its_settings_need() -> None:
    settings = app_settings()
    needed = {
        (role, f"${{{address_of(settings[name])}.id}}") for name, roles in ROLES_BY_SETTING.items() for role in roles
    }
    granted = {(e["role"], e["scope"]) for e in role_assignments().values() if e["principal"] == APP}
    assert granted == needed, f"missing {needed - granted}, not needed {granted - needed}"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"


def test_event_grid_may_write_its_dead_letter_container_only() -> None:
    sub = resource("azurerm_eventgrid_system_topic_event_subscription", "images_blob_created")
    topic = address_of(sub["system_topic"])
    assert locals_()["eventgrid_principal_id"] == f"${{{topic}.identity[0].principal_id}}"
    container = address_of(first(sub["storage_blob_dead_letter_destination"])["storage_blob_container_name"])
    granted = [e for e in role_assignments().values() if e["principal"] == EVENTGRID]
    assert [(e["role"], e["scope"]) for e in granted] == [("Storage Blob Data Contributor", f"${{{container}.id}}")]
    assert "${azurerm_role_assignment.this}" in sub["depends_on"], "the subscription waits for the roles"


def test_moved_blocks_keep_the_addresses_of_a_deployment() -> None:
    moved = {entry["from"]: entry["to"] for entry in parsed()["main.identity.tf"].get("moved", [])}
    assert moved == {
        f"${{azurerm_role_assignment.{key}}}": f'${{azurerm_role_assignment.this["{key}"]}}' for key in BEFORE_FOR_EACH
    }
    assert BEFORE_FOR_EACH <= set(role_assignments()), "a moved block must point at a key of the map"


def test_role_assignments_live_in_main_identity() -> None:
    text = (TF_DIR / "main.identity.tf").read_text(encoding="utf-8")
    for match in re.finditer(r'^resource "(azurerm_cosmosdb_sql_role_assignment)" "(\w+)"', text, re.MULTILINE):
        before = text[: match.start()].rstrip("\n").splitlines()
        assert before and before[-1].startswith("#"), f"{match.group(2)} has no comment saying why it is needed"
    others = [
        p.name
        for p in TF_DIR.glob("*.tf")
        if p.name != "main.identity.tf" and 'role_assignment"' in p.read_text(encoding="utf-8")
    ]
    assert not others, f"role assignments belong in main.identity.tf, found in {others}"


def test_cosmos_data_role_is_built_in_data_contributor_on_the_database() -> None:
    found = of_type("azurerm_cosmosdb_sql_role_assignment")
    assert set(found) == {"app_data_contributor"}
    body = found["app_data_contributor"]
    assert body["role_definition_id"] == (
        "${azurerm_cosmosdb_account.main.id}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002"
    )
    assert body["scope"] == "${azurerm_cosmosdb_account.main.id}/dbs/${azurerm_cosmosdb_sql_database.main.name}"
    assert body["principal_id"] == "${local.app_principal_id}"
    assert not of_type("azurerm_cosmosdb_sql_role_definition"), "use the built-in role, not a custom one"


def test_identities_are_system_assigned() -> None:
    assert first(function_app()["identity"])["type"] == "SystemAssigned"
    assert first(resource("azurerm_eventgrid_system_topic", "images")["identity"])["type"] == "SystemAssigned"


# --------------------------------------------------------------------------------------------------
# Data services: keys and local auth disabled, shapes the app relies on
# --------------------------------------------------------------------------------------------------


def test_storage_accounts_are_identity_only_and_hardened() -> None:
    accounts = of_type("azurerm_storage_account")
    assert set(accounts) == {"images", "runtime"}
    for name, body in accounts.items():
        assert body["shared_access_key_enabled"] is False, f"{name}: shared keys must be disabled"
        assert body["min_tls_version"] == "TLS1_2", name
        assert body["allow_nested_items_to_be_public"] is False, name
        assert body["https_traffic_only_enabled"] is True, name
        assert body["default_to_oauth_authentication"] is True, name
        props = first(body["blob_properties"])
        assert first(props["delete_retention_policy"])["days"], f"{name}: blob soft delete"
        assert first(props["container_delete_retention_policy"])["days"], f"{name}: container soft delete"


def test_containers_and_runtime_storage_wiring() -> None:
    containers = of_type("azurerm_storage_container")
    assert containers["images"]["name"] == "images"
    assert containers["images"]["storage_account_id"] == "${azurerm_storage_account.images.id}"
    assert resolve_subscription_ref(containers["deadletters"]["name"]) == "deadletters"
    assert containers["deadletters"]["storage_account_id"] == "${azurerm_storage_account.images.id}"
    assert containers["deployment"]["storage_account_id"] == "${azurerm_storage_account.runtime.id}"
    for name, body in containers.items():
        assert body["container_access_type"] == "private", name
    storage = site_properties()["functionAppConfig"]["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == (
        "${azurerm_storage_account.runtime.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
    )


def test_function_app_is_flex_consumption_python_311() -> None:
    plan = resource("azurerm_service_plan", "functions")
    assert plan["sku_name"] == "FC1" and plan["os_type"] == "Linux"
    app = function_app()
    assert app["body"]["kind"] == "functionapp,linux"
    assert app["parent_id"] == "${azurerm_resource_group.main.id}"
    props = site_properties()
    assert props["serverFarmId"] == "${azurerm_service_plan.functions.id}"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["scaleAndConcurrency"] == {
        "maximumInstanceCount": "${var.function_maximum_instance_count}",
        "instanceMemoryMB": "${var.function_instance_memory_mb}",
    }
    assert props["httpsOnly"] is True
    site = props["siteConfig"]
    assert (site["minTlsVersion"], site["scmMinTlsVersion"]) == ("1.2", "1.2")
    assert site["ftpsState"] == "Disabled" and site["remoteDebuggingEnabled"] is False
    assert "properties.defaultHostName" in app["response_export_values"]


def test_host_json_task_hub_lives_in_the_identity_based_runtime_account() -> None:
    host = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    durable = host["extensions"]["durableTask"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", durable["hubName"]), durable["hubName"]
    # No separate storage connection: the task hub uses AzureWebJobsStorage, which Terraform sets by name.
    assert "connectionName" not in durable.get("storageProvider", {})
    assert "connectionStringName" not in durable.get("storageProvider", {})
    assert locals_()["task_hub_name"] == "${local.host_json.extensions.durableTask.hubName}"
    assert locals_()["host_json"] == '${jsondecode(file("${path.module}/../../host.json"))}'


def test_cosmos_is_identity_only_with_the_record_indexing_policy() -> None:
    account = resource("azurerm_cosmosdb_account", "main")
    assert account["local_authentication_disabled"] is True
    assert account["access_key_metadata_writes_enabled"] is False
    assert account["minimal_tls_version"] == "Tls12"
    container = cosmos_container()
    assert container["parent_id"] == "${azurerm_cosmosdb_sql_database.main.id}"
    assert container["name"] == "${var.cosmos_container_name}"
    spec = container["body"]["properties"]["resource"]
    assert spec["id"] == "${var.cosmos_container_name}"
    assert spec["partitionKey"] == {"paths": ["/id"], "kind": "Hash", "version": 2}
    policy = spec["indexingPolicy"]
    assert policy["indexingMode"] == "consistent"
    assert [p["path"] for p in policy["includedPaths"]] == ["/*"]
    excluded = {p["path"] for p in policy["excludedPaths"]}
    assert {"/analysis/*", "/readResult/*", "/text/?", "/documentFields/*"} <= excluded
    composites = [[(i["path"], i["order"]) for i in c] for c in policy["compositeIndexes"]]
    assert [("/profile", "ascending"), ("/createdAt", "descending")] in composites
    assert [("/status", "ascending"), ("/createdAt", "descending")] in composites
    mode = variables()["cosmos_throughput_mode"]
    assert mode["default"] == "serverless"
    assert "autoscale" in mode["validation"][0]["condition"]
    capabilities = first(account["dynamic"])["capabilities"]
    assert "EnableServerless" in capabilities["for_each"] and "serverless" in capabilities["for_each"]
    # Autoscale: created with the container's options, kept in line by the throughputSettings update.
    options = container["body"]["properties"]["options"]
    assert options == (
        '${var.cosmos_throughput_mode == "autoscale" ? '
        "{autoscaleSettings = {maxThroughput = var.cosmos_autoscale_max_throughput}} : null}"
    )
    assert container["ignore_null_property"] is True, "serverless must send no options at all"
    assert first(container["lifecycle"])["ignore_changes"] == ["${body.properties.options}"], (
        "options are create-only; the throughputSettings update owns later changes"
    )
    throughput = resource("azapi_update_resource", "cosmos_images_throughput")
    assert throughput["count"] == '${var.cosmos_throughput_mode == "autoscale" ? 1 : 0}'
    assert throughput["type"].startswith(
        "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/throughputSettings@"
    )
    assert throughput["name"] == "default" and throughput["parent_id"] == "${azapi_resource.cosmos_images_container.id}"
    assert throughput["body"]["properties"]["resource"]["autoscaleSettings"] == {
        "maxThroughput": "${var.cosmos_autoscale_max_throughput}"
    }


def test_cosmos_label_set_container_beside_the_records() -> None:
    """Custom label sets (docs/custom-labels.md): partition key /id in the records' database, payload unindexed."""
    container = resource("azapi_resource", "cosmos_labelsets_container")
    assert container["type"] == "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-10-15"
    assert container["parent_id"] == "${azurerm_cosmosdb_sql_database.main.id}"
    spec = container["body"]["properties"]["resource"]
    assert spec["id"] == container["name"] == "labelsets"
    assert spec["partitionKey"] == {"paths": ["/id"], "kind": "Hash", "version": 2}
    assert {"/labels/*", "/examples/*"} <= {p["path"] for p in spec["indexingPolicy"]["excludedPaths"]}
    assert container["ignore_null_property"] is True, "serverless must send no options at all"
    from imagepipe.settings import Settings

    default = Settings.model_fields["cosmos_labelsets_container"].default
    assert default == "labelsets"


def cosmos_container() -> dict[str, Any]:
    container = resource("azapi_resource", "cosmos_images_container")
    assert container["type"] == "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-10-15"
    assert not of_type("azurerm_cosmosdb_sql_container"), "one container resource only (azapi)"
    return container


def test_cosmos_full_text_search_on_the_ocr_text() -> None:
    """Defect 9.7: the account capability, the container's full-text policy and its full-text index."""
    account = resource("azurerm_cosmosdb_account", "main")
    capabilities = first(account["dynamic"])["capabilities"]
    assert capabilities["for_each"] == (
        '${concat(var.cosmos_throughput_mode == "serverless" ? ["EnableServerless"] : [], '
        '["EnableNoSQLFullTextSearch"])}'
    ), "EnableNoSQLFullTextSearch must be on in both throughput modes"
    assert first(capabilities["content"]) == {"name": "${capabilities.value}"}
    spec = cosmos_container()["body"]["properties"]["resource"]
    assert locals_()["cosmos_full_text_language"] == "en-US"
    assert spec["fullTextPolicy"] == {
        "defaultLanguage": "${local.cosmos_full_text_language}",
        "fullTextPaths": [{"path": "/text", "language": "${local.cosmos_full_text_language}"}],
    }
    assert spec["indexingPolicy"]["fullTextIndexes"] == [{"path": "/text"}]


def test_vision_is_identity_only() -> None:
    vision = resource("azurerm_cognitive_account", "vision")
    assert vision["kind"] == "ComputerVision"
    assert vision["local_auth_enabled"] is False
    assert vision["custom_subdomain_name"], "custom subdomain is required for Entra ID auth"
    assert vision["sku_name"] == "${var.vision_sku_name}"
    assert variables()["vision_sku_name"]["default"] == "S1"


def test_document_intelligence_is_identity_only_and_the_app_may_call_it() -> None:
    documents = resource("azurerm_cognitive_account", "documents")
    assert documents["kind"] == "FormRecognizer"
    assert documents["local_auth_enabled"] is False
    assert documents["custom_subdomain_name"] == "${local.documents_account_name}", "Entra ID needs a subdomain"
    assert documents["identity"] == [{"type": "SystemAssigned"}] or documents["identity"] == {"type": "SystemAssigned"}
    assert documents["sku_name"] == "${var.documents_sku_name}"
    assert variables()["documents_sku_name"]["default"] == "S0"
    grant = role_assignments()["app_documents_user"]
    assert (grant["role"], grant["scope"], grant["principal"]) == (
        "Cognitive Services User",
        "${azurerm_cognitive_account.documents.id}",
        APP,
    )
    settings = app_settings()
    assert settings["DOCUMENT_FIELDS_PROVIDER"] == "azure"
    assert address_of(settings["DOCUMENT_INTELLIGENCE__endpoint"]) == "azurerm_cognitive_account.documents"


# --------------------------------------------------------------------------------------------------
# Event Grid: the subscription is config/eventgrid-subscriptions.json
# --------------------------------------------------------------------------------------------------


def test_terraform_reads_the_single_source_json() -> None:
    assert locals_()["eventgrid_config"] == (
        '${jsondecode(file("${path.module}/../../config/eventgrid-subscriptions.json"))}'
    )
    assert (TF_DIR / ".." / ".." / "config" / "eventgrid-subscriptions.json").resolve() == EVENTGRID_JSON.resolve()
    assert locals_()["event_subscription"] == "${one(local.eventgrid_config.subscriptions)}"


def test_subscription_filter_values_equal_the_json() -> None:
    expected = eventgrid_json()
    sub = resource("azurerm_eventgrid_system_topic_event_subscription", "images_blob_created")
    assert resolve_subscription_ref(sub["name"]) == expected["name"]
    assert resolve_subscription_ref(sub["included_event_types"]) == ["Microsoft.Storage.BlobCreated"]
    assert expected["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    subject = first(sub["subject_filter"])
    assert resolve_subscription_ref(subject["subject_begins_with"]) == expected["subjectBeginsWith"]
    assert expected["subjectBeginsWith"] == "/blobServices/default/containers/images/blobs/"
    ends = subject["subject_ends_with"]
    assert "local.event_subscription.subjectEndsWith" in ends and expected.get("subjectEndsWith", "") == ""
    assert sub["event_delivery_schema"] == "EventGridSchema"


def test_advanced_filters_equal_the_json() -> None:
    expected = eventgrid_json()["advancedFilters"]
    assert {
        "operatorType": "StringIn",
        "key": "data.api",
        "values": ["PutBlob", "PutBlockList", "CopyBlob"],
    } in expected
    supported = locals_()["supported_advanced_filter_operators"]
    assert {f["operatorType"] for f in expected} <= set(supported), "JSON uses an operator Terraform drops"
    assert locals_()["advanced_filters_string_in"] == (
        '${[for f in local.event_subscription.advancedFilters : f if f.operatorType == "StringIn"]}'
    )
    sub = resource("azurerm_eventgrid_system_topic_event_subscription", "images_blob_created")
    string_in = first(first(sub["advanced_filter"])["dynamic"])["string_in"]
    assert string_in["for_each"] == "${local.advanced_filters_string_in}"
    content = first(string_in["content"])
    assert content == {"key": "${string_in.value.key}", "values": "${string_in.value.values}"}
    # The evaluated result, as Terraform would compute it from the JSON:
    evaluated = [{"key": f["key"], "values": f["values"]} for f in expected if f["operatorType"] == "StringIn"]
    assert evaluated == [{"key": "data.api", "values": ["PutBlob", "PutBlockList", "CopyBlob"]}]


def test_retry_policy_variables_default_to_the_json() -> None:
    retry = eventgrid_json()["retryPolicy"]
    sub = resource("azurerm_eventgrid_system_topic_event_subscription", "images_blob_created")
    policy = first(sub["retry_policy"])
    assert policy == {
        "max_delivery_attempts": "${var.event_max_delivery_attempts}",
        "event_time_to_live": "${var.event_time_to_live_minutes}",
    }
    assert variables()["event_max_delivery_attempts"]["default"] == retry["maxDeliveryAttempts"]
    assert variables()["event_time_to_live_minutes"]["default"] == retry["eventTimeToLiveInMinutes"]


def test_dead_letters_use_the_topic_identity_and_the_json_container() -> None:
    sub = resource("azurerm_eventgrid_system_topic_event_subscription", "images_blob_created")
    assert first(sub["dead_letter_identity"])["type"] == "SystemAssigned"
    dest = first(sub["storage_blob_dead_letter_destination"])
    assert dest["storage_account_id"] == "${azurerm_storage_account.images.id}"
    assert dest["storage_blob_container_name"] == "${azurerm_storage_container.deadletters.name}"
    assert eventgrid_json()["deadLetterContainer"] == "deadletters"
    topic = resource("azurerm_eventgrid_system_topic", "images")
    assert topic["source_resource_id"] == "${azurerm_storage_account.images.id}"
    assert topic["topic_type"] == "Microsoft.Storage.StorageAccounts"


def test_subscription_waits_for_published_code() -> None:
    sub = resource("azurerm_eventgrid_system_topic_event_subscription", "images_blob_created")
    assert sub["count"] == "${var.create_event_subscription ? 1 : 0}"
    flag = variables()["create_event_subscription"]
    assert flag["type"] == "bool" and flag["default"] is False
    text = (TF_DIR / "main.events.tf").read_text(encoding="utf-8")
    assert "publish" in text and "validat" in text, "main.events.tf must explain the apply-publish-apply order"


# --------------------------------------------------------------------------------------------------
# checkov suppressions and docs
# --------------------------------------------------------------------------------------------------


def test_every_checkov_skip_has_a_real_reason() -> None:
    for path in TF_DIR.glob("*.tf"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                match = re.fullmatch(r"\s*#checkov:skip=(CKV2?_AZURE_\d+):(.+)", line)
                assert match, f"{path.name}: malformed skip {line.strip()!r}"
                assert len(match.group(2).strip()) >= 40, f"{path.name}: skip {match.group(1)} needs a real reason"


def test_deploy_doc_covers_the_two_step_apply_and_costs() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    for needle in (
        "create_event_subscription=true",
        "func azure functionapp publish",
        "terraform destroy",
        "5k",
        "500k",
        "50M",
        "checkov",
    ):
        assert needle in text, f"docs/deploy.md does not mention {needle!r}"


def test_deploy_doc_says_how_to_confirm_identity_host_storage() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    assert "az functionapp config appsettings list" in text
    assert "[?name=='AzureWebJobsStorage']" in text
    assert "/admin/host/status" in text, "docs/deploy.md must show the host status check"
    assert "EnableNoSQLFullTextSearch" in text, "docs/deploy.md must warn about the capability on existing accounts"
    assert "images_cors_allowed_origins" in text
    assert "VISION_MAX_CONCURRENCY" in text and "VISION_RATE_LIMIT_PER_SECOND" in text


# --------------------------------------------------------------------------------------------------
# CORS: browser uploads to the signed URL, rule values from config/cors.json
# --------------------------------------------------------------------------------------------------


def cors_json() -> dict[str, Any]:
    data = json.loads(CORS_JSON.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_cors_json_allows_a_browser_put_to_a_signed_url() -> None:
    """Defect 9.5: the rule a browser's preflight for a SAS PUT needs, within the Blob service's limits."""
    rule = cors_json()
    assert set(rule) == {"$comment", "allowedMethods", "allowedHeaders", "exposedHeaders", "maxAgeInSeconds"}
    assert rule["allowedMethods"] == ["PUT", "OPTIONS"]
    headers = [h.lower() for h in rule["allowedHeaders"]]
    assert {"x-ms-blob-type", "x-ms-meta-*", "content-type", "x-ms-version"} <= set(headers)
    assert "*" not in headers, "name the headers: a wildcard allows any header"
    assert len([h for h in headers if h.endswith("*")]) <= 2, "the Blob service allows two prefixed headers"
    assert len(headers) <= 66 and len(rule["exposedHeaders"]) <= 66
    assert {"etag", "x-ms-request-id"} <= {h.lower() for h in rule["exposedHeaders"]}
    assert isinstance(rule["maxAgeInSeconds"], int) and 0 < rule["maxAgeInSeconds"] <= 86400
    assert "allowedOrigins" not in rule, "origins are per deployment: a variable, not the shared file"


def test_terraform_cors_rule_is_the_json_with_origins_from_the_variable() -> None:
    assert locals_()["images_cors"] == '${jsondecode(file("${path.module}/../../config/cors.json"))}'
    images = resource("azurerm_storage_account", "images")
    props = first(images["blob_properties"])
    cors = first(props["dynamic"])["cors_rule"]
    # No origins, no rule: an empty allowed_origins list would be rejected by the service.
    assert cors["for_each"] == "${length(var.images_cors_allowed_origins) > 0 ? [local.images_cors] : []}"
    assert first(cors["content"]) == {
        "allowed_origins": "${var.images_cors_allowed_origins}",
        "allowed_methods": "${cors_rule.value.allowedMethods}",
        "allowed_headers": "${cors_rule.value.allowedHeaders}",
        "exposed_headers": "${cors_rule.value.exposedHeaders}",
        "max_age_in_seconds": "${cors_rule.value.maxAgeInSeconds}",
    }
    runtime = first(resource("azurerm_storage_account", "runtime")["blob_properties"])
    assert "dynamic" not in runtime and "cors_rule" not in runtime, "only the images account takes browser uploads"


def origin_pattern() -> re.Pattern[str]:
    var = variables()["images_cors_allowed_origins"]
    assert var["type"] == "${list(string)}" and var["default"] == []
    conditions = " ".join(rule["condition"] for rule in var["validation"])
    match = re.search(r'regex\("(.+?)", origin\)', conditions)
    assert match, "the origin validation must use a regex"
    # HCL string escapes (\\ -> \) give the RE2 pattern, which is also valid for Python here.
    return re.compile(match.group(1).replace("\\\\", "\\"))


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("https://app.example.com", True),
        ("http://localhost:5173", True),
        ("http://127.0.0.1:8080", True),
        ("https://a-b.example.co.uk:443", True),
        ("*", False),
        ("https://*.example.com", False),
        ("https://app.example.com/", False),
        ("https://app.example.com/upload", False),
        ("HTTPS://APP.EXAMPLE.COM", False),
        ("ftp://example.com", False),
        ("https://example.com:123456", False),
        ("https://-bad.example.com", False),
        ("", False),
    ],
)
def test_cors_origin_validation(origin: str, accepted: bool) -> None:
    assert bool(origin_pattern().fullmatch(origin)) is accepted, origin
    conditions = " ".join(rule["condition"] for rule in variables()["images_cors_allowed_origins"]["validation"])
    assert "<= 64" in conditions and "<= 256" in conditions and "distinct" in conditions


# --------------------------------------------------------------------------------------------------
# Vision quota: each instance's share of the account's transactions per second
# --------------------------------------------------------------------------------------------------


def vision_limits(sku: str, instances: int, tps_override: float | None = None) -> tuple[int, str]:
    """What main.vision.tf computes, evaluated here for the figures in docs/deploy.md."""
    tps = tps_override if tps_override is not None else {"S1": 20.0, "F0": 20.0 / 60.0}[sku]
    return max(1, int(tps // instances)), f"{tps / instances:.6f}"


def test_vision_quota_is_split_across_the_maximum_instances() -> None:
    """Defect 9.3 (Terraform part): per-instance limits derived from the SKU and the scale-out limit."""
    loc = locals_()
    assert loc["vision_sku_transactions_per_second"] == {"S1": 20, "F0": "${20 / 60}"}
    assert loc["vision_transactions_per_second"] == (
        "${coalesce(var.vision_transactions_per_second, local.vision_sku_transactions_per_second[var.vision_sku_name])}"
    )
    assert loc["vision_max_concurrency_per_instance"] == (
        "${max(1, floor(local.vision_transactions_per_second / var.function_maximum_instance_count))}"
    )
    assert loc["vision_rate_limit_per_instance"] == (
        '${format("%.6f", local.vision_transactions_per_second / var.function_maximum_instance_count)}'
    )
    assert app_settings()["VISION_MAX_CONCURRENCY"] == "${tostring(local.vision_max_concurrency_per_instance)}"
    assert app_settings()["VISION_RATE_LIMIT_PER_SECOND"] == "${local.vision_rate_limit_per_instance}"
    # Every SKU the variable admits has a quota entry.
    skus = set(re.findall(r'"(\w+)"', variables()["vision_sku_name"]["validation"][0]["condition"]))
    assert skus == set(loc["vision_sku_transactions_per_second"])
    override = variables()["vision_transactions_per_second"]
    assert override["default"] is None and override["type"] == "number"
    # The figures documented in docs/deploy.md.
    assert vision_limits("S1", 40) == (1, "0.500000")
    assert vision_limits("S1", 10) == (2, "2.000000")
    assert vision_limits("F0", 1) == (1, "0.333333")
    assert vision_limits("S1", 40, 100.0) == (2, "2.500000")
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    for figure in ("0.5", "2.5"):
        assert figure in text, f"docs/deploy.md lacks the worked figure {figure}"


def test_example_tfvars_origins_pass_the_validation() -> None:
    with (TF_DIR / "terraform.tfvars.example").open(encoding="utf-8") as fh:
        example = hcl2.load(fh, serialization_options=SerializationOptions(strip_string_quotes=True))
    origins = example["images_cors_allowed_origins"]
    assert origins, "the example shows how to allow a page"
    assert all(origin_pattern().fullmatch(o) for o in origins), origins
