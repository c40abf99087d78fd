# Every role assignment of the deployment, least privilege, each with the reason it is needed.
# Principals are system-assigned identities (principal_type = "ServicePrincipal" so that the assignment
# does not wait for Entra ID replication of a freshly created identity).
# Azure RBAC assignments are one for_each over local.role_assignments, which tests/infra/ reads and checks
# (data-plane roles only, resource scopes only, a reason for each, what the code needs is granted).

locals {
  app_principal_id       = azapi_resource.function_app.identity[0].principal_id
  eventgrid_principal_id = azurerm_eventgrid_system_topic.images.identity[0].principal_id

  # key (the address azurerm_role_assignment.this["key"]) => the one role, on the one scope, for the one
  # principal, and why. `why` is documentation only: the provider's `description` argument forces a new
  # assignment when it changes, so it is not sent.
  role_assignments = {
    # --- the app -> images account ---
    app_images_blob_data_contributor = {
      role      = "Storage Blob Data Contributor"
      scope     = azurerm_storage_account.images.id
      principal = local.app_principal_id
      why       = <<-EOT
        Read, write and delete images (upload, metadata, reconcile sweep, delete API) and list/read/delete dead letters
        (operator redrive). Account scope because both containers are used and the app checks the images container
        exists at start-up; the data role only, no management rights.
      EOT
    }
    app_images_blob_delegator = {
      role      = "Storage Blob Delegator"
      scope     = azurerm_storage_account.images.id
      principal = local.app_principal_id
      why       = <<-EOT
        Get a user-delegation key to sign the short-lived upload URL of POST /api/uploads (no account key exists). The
        key request is an account-level action; what the SAS may do is still bounded by the blob data role above.
      EOT
    }

    # --- the app (Functions host) -> runtime account ---
    app_runtime_blob_data_owner = {
      role      = "Storage Blob Data Owner"
      scope     = azurerm_storage_account.runtime.id
      principal = local.app_principal_id
      why       = <<-EOT
        Host storage and the Durable Functions task hub: blobs (leases, host locks, large payloads, the Flex Consumption
        deployment package). Durable needs Owner-level blob rights to manage its lease containers.
      EOT
    }
    app_runtime_queue_data_contributor = {
      role      = "Storage Queue Data Contributor"
      scope     = azurerm_storage_account.runtime.id
      principal = local.app_principal_id
      why       = "Durable Functions control and work-item queues."
    }
    app_runtime_table_data_contributor = {
      role      = "Storage Table Data Contributor"
      scope     = azurerm_storage_account.runtime.id
      principal = local.app_principal_id
      why       = "Durable Functions history and instances tables."
    }

    # --- the app -> AI Vision ---
    app_vision_user = {
      role      = "Cognitive Services User"
      scope     = azurerm_cognitive_account.vision.id
      principal = local.app_principal_id
      why       = "Call Image Analysis (analyze, read) with an Entra ID token; no key listing, no management rights."
    }

    # --- the app -> Document Intelligence ---
    app_documents_user = {
      role      = "Cognitive Services User"
      scope     = azurerm_cognitive_account.documents.id
      principal = local.app_principal_id
      why       = "Analyze documents (prebuilt invoice/receipt, query fields) with an Entra ID token; no key listing, no management rights."
    }

    # --- the app -> Application Insights ---
    app_monitoring_metrics_publisher = {
      role      = "Monitoring Metrics Publisher"
      scope     = azurerm_application_insights.main.id
      principal = local.app_principal_id
      why       = "Send telemetry with an Entra ID token (local auth is disabled on the Application Insights resource)."
    }

    # --- the Event Grid system topic -> dead-letter container ---
    eventgrid_deadletter_writer = {
      role      = "Storage Blob Data Contributor"
      scope     = azurerm_storage_container.deadletters.id
      principal = local.eventgrid_principal_id
      why       = "Write undeliverable events as blobs, with the topic's identity; only on the dead-letter container."
    }
  }
}

# Azure RBAC: every assignment of the map above.
resource "azurerm_role_assignment" "this" {
  for_each = local.role_assignments

  scope                = each.value.scope
  role_definition_name = each.value.role
  principal_id         = each.value.principal
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

# The assignments were one resource block each until the for_each: moved blocks keep their state, so an
# existing deployment neither destroys nor re-creates any of them.
moved {
  from = azurerm_role_assignment.app_images_blob_data_contributor
  to   = azurerm_role_assignment.this["app_images_blob_data_contributor"]
}

moved {
  from = azurerm_role_assignment.app_images_blob_delegator
  to   = azurerm_role_assignment.this["app_images_blob_delegator"]
}

moved {
  from = azurerm_role_assignment.app_runtime_blob_data_owner
  to   = azurerm_role_assignment.this["app_runtime_blob_data_owner"]
}

moved {
  from = azurerm_role_assignment.app_runtime_queue_data_contributor
  to   = azurerm_role_assignment.this["app_runtime_queue_data_contributor"]
}

moved {
  from = azurerm_role_assignment.app_runtime_table_data_contributor
  to   = azurerm_role_assignment.this["app_runtime_table_data_contributor"]
}

moved {
  from = azurerm_role_assignment.app_vision_user
  to   = azurerm_role_assignment.this["app_vision_user"]
}

moved {
  from = azurerm_role_assignment.app_monitoring_metrics_publisher
  to   = azurerm_role_assignment.this["app_monitoring_metrics_publisher"]
}

moved {
  from = azurerm_role_assignment.eventgrid_deadletter_writer
  to   = azurerm_role_assignment.this["eventgrid_deadletter_writer"]
}
