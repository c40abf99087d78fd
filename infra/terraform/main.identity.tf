# Every role assignment of the deployment, least privilege, each with the reason it is needed.
# Principals are system-assigned identities (principal_type = "ServicePrincipal" so that the assignment
# does not wait for Entra ID replication of a freshly created identity).
# tests/infra/ holds the same table and fails if an assignment is added, widened or re-scoped.

locals {
  app_principal_id = azapi_resource.function_app.identity[0].principal_id
}

# --- the app -> images account ---------------------------------------------------------------------

# Read, write and delete images (upload, metadata, reconcile sweep, delete API) and list/read/delete
# dead letters (operator redrive). Account scope because both containers are used and the app checks
# the images container exists at start-up; it is the data role only, no management rights.
resource "azurerm_role_assignment" "app_images_blob_data_contributor" {
  scope                = azurerm_storage_account.images.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# Get a user-delegation key to sign the short-lived upload URL of POST /api/uploads (no account key
# exists). The key request is an account-level action, so the scope is the account; what the SAS may do
# is still bounded by the identity's blob data role above.
resource "azurerm_role_assignment" "app_images_blob_delegator" {
  scope                = azurerm_storage_account.images.id
  role_definition_name = "Storage Blob Delegator"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# --- the app (Functions host) -> runtime account -----------------------------------------------------

# Host storage and Durable Functions task hub on Azure Storage: blobs (leases, host locks, large
# payloads, the Flex Consumption deployment package). Durable needs Owner-level blob rights to manage
# its lease containers.
resource "azurerm_role_assignment" "app_runtime_blob_data_owner" {
  scope                = azurerm_storage_account.runtime.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# Durable Functions control and work-item queues.
resource "azurerm_role_assignment" "app_runtime_queue_data_contributor" {
  scope                = azurerm_storage_account.runtime.id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# Durable Functions history and instances tables.
resource "azurerm_role_assignment" "app_runtime_table_data_contributor" {
  scope                = azurerm_storage_account.runtime.id
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# --- the app -> Cosmos DB (data-plane RBAC, not Azure RBAC) ---------------------------------------

# Cosmos DB Built-in Data Contributor (role id ...0002): read, upsert, delete and query items.
# Scoped to the imagepipe database, not the whole account; it cannot create databases or containers.
resource "azurerm_cosmosdb_sql_role_assignment" "app_data_contributor" {
  resource_group_name = azurerm_resource_group.main.name
  account_name        = azurerm_cosmosdb_account.main.name
  role_definition_id  = "${azurerm_cosmosdb_account.main.id}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002"
  principal_id        = local.app_principal_id
  scope               = "${azurerm_cosmosdb_account.main.id}/dbs/${azurerm_cosmosdb_sql_database.main.name}"
}

# --- the app -> AI Vision ----------------------------------------------------------------------------

# Call Image Analysis (analyze, read) with an Entra ID token; no key listing, no management rights.
resource "azurerm_role_assignment" "app_vision_user" {
  scope                = azurerm_cognitive_account.vision.id
  role_definition_name = "Cognitive Services User"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# --- the app -> Application Insights ---------------------------------------------------------------

# Send telemetry with an Entra ID token (local auth is disabled on the App Insights resource).
resource "azurerm_role_assignment" "app_monitoring_metrics_publisher" {
  scope                = azurerm_application_insights.main.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# --- the Event Grid system topic -> dead-letter container ------------------------------------------

# Write undeliverable events as blobs, with the topic's identity; only on the dead-letter container.
resource "azurerm_role_assignment" "eventgrid_deadletter_writer" {
  scope                = azurerm_storage_container.deadletters.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_eventgrid_system_topic.images.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}
