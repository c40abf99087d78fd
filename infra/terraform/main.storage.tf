# Two storage accounts, both with shared keys disabled (Entra ID only):
# - images: the uploaded images (container `images`) and Event Grid dead letters (container `deadletters`);
#   the app reaches it through IMAGES_STORAGE__blobServiceUri with its managed identity.
# - runtime: the Functions host storage (AzureWebJobsStorage__accountName): Durable Functions task hub
#   (queues, tables, blobs), host locks, timer schedules, and the Flex Consumption deployment package.
# Keeping them apart keeps the app's data roles off the host's internals and vice versa.

resource "azurerm_storage_account" "images" {
  #checkov:skip=CKV_AZURE_35:No VNet in this deployment: clients PUT uploads straight to the account with a user-delegation SAS and Event Grid reads it; access is Entra ID only (shared keys disabled).
  #checkov:skip=CKV_AZURE_59:Public endpoint is required for direct client uploads (user-delegation SAS from /api/uploads); anonymous access and shared keys are disabled.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet and private DNS, which this deployment deliberately does not create; Entra ID is the only way in.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed encryption keys; customer-managed keys need a Key Vault and key rotation that this workload's data class does not require.
  #checkov:skip=CKV_AZURE_33:Queue service is unused on the images account; its logs go through azurerm_monitor_diagnostic_setting.storage["images_queue"] (checkov only recognises the legacy queue_properties.logging).
  name                              = local.images_storage_account_name
  resource_group_name               = azurerm_resource_group.main.name
  location                          = azurerm_resource_group.main.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.images_storage_replication_type
  access_tier                       = "Hot"
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  local_user_enabled                = false
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = true

  # Applies to account SAS only (impossible with keys disabled); user-delegation SAS lifetimes are set by
  # the app (UPLOAD_URL_TTL_S, at most 1 day). Logged, not blocked, if anything ever exceeds an hour.
  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    # Soft delete: an accidental delete of an image (or the container) is recoverable for N days.
    delete_retention_policy {
      days = var.blob_soft_delete_retention_days
    }
    container_delete_retention_policy {
      days = var.container_soft_delete_retention_days
    }

    # Browser uploads: a page on one of var.images_cors_allowed_origins PUTs the file to the signed URL of
    # POST /api/uploads. Methods, headers and max age come from config/cors.json (the local stack sets the
    # same rule on Azurite); no origins, no rule, and browsers are refused as before.
    dynamic "cors_rule" {
      for_each = length(var.images_cors_allowed_origins) > 0 ? [local.images_cors] : []
      content {
        allowed_origins    = var.images_cors_allowed_origins
        allowed_methods    = cors_rule.value.allowedMethods
        allowed_headers    = cors_rule.value.allowedHeaders
        exposed_headers    = cors_rule.value.exposedHeaders
        max_age_in_seconds = cors_rule.value.maxAgeInSeconds
      }
    }
  }

  tags = local.tags
}

resource "azurerm_storage_container" "images" {
  #checkov:skip=CKV2_AZURE_21:Blob read/write/delete logs go to Log Analytics through azurerm_monitor_diagnostic_setting.storage; the check wants azurerm_log_analytics_storage_insights, which needs a storage account key (keys are disabled).
  name                  = "images"
  storage_account_id    = azurerm_storage_account.images.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "deadletters" {
  #checkov:skip=CKV2_AZURE_21:Blob read/write/delete logs go to Log Analytics through azurerm_monitor_diagnostic_setting.storage; the check wants azurerm_log_analytics_storage_insights, which needs a storage account key (keys are disabled).
  # The container name comes from config/eventgrid-subscriptions.json, like the rest of the subscription.
  name                  = local.event_subscription.deadLetterContainer
  storage_account_id    = azurerm_storage_account.images.id
  container_access_type = "private"
}

resource "azurerm_storage_account" "runtime" {
  #checkov:skip=CKV_AZURE_35:No VNet in this deployment (Flex Consumption without VNet integration reaches storage over its public endpoint); access is Entra ID only.
  #checkov:skip=CKV_AZURE_59:The Functions host reaches its storage over the public endpoint (no VNet integration); shared keys and anonymous access are disabled.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet and private DNS, which this deployment deliberately does not create; Entra ID is the only way in.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed encryption keys; the task hub holds transient orchestration state only.
  #checkov:skip=CKV_AZURE_206:Zone-redundant (ZRS) by default: the task hub is transient orchestration state and a geo-replica would be stale after failover; the images account is geo-redundant.
  #checkov:skip=CKV_AZURE_33:Queue logs go through azurerm_monitor_diagnostic_setting.storage["runtime_queue"] (checkov only recognises the legacy queue_properties.logging, which needs a data-plane call).
  name                              = local.runtime_storage_account_name
  resource_group_name               = azurerm_resource_group.main.name
  location                          = azurerm_resource_group.main.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.runtime_storage_replication_type
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  local_user_enabled                = false
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = true

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    delete_retention_policy {
      days = var.blob_soft_delete_retention_days
    }
    container_delete_retention_policy {
      days = var.container_soft_delete_retention_days
    }
  }

  tags = local.tags
}

resource "azurerm_storage_container" "deployment" {
  #checkov:skip=CKV2_AZURE_21:Blob read/write/delete logs go to Log Analytics through azurerm_monitor_diagnostic_setting.storage; the check wants azurerm_log_analytics_storage_insights, which needs a storage account key (keys are disabled).
  # Flex Consumption reads the published package from here with the app's system-assigned identity.
  name                  = "app-package"
  storage_account_id    = azurerm_storage_account.runtime.id
  container_access_type = "private"
}

# Storage logs (read, write, delete) for the blob and queue services of both accounts, to Log Analytics.
locals {
  storage_service_logs = {
    images_blob   = "${azurerm_storage_account.images.id}/blobServices/default"
    images_queue  = "${azurerm_storage_account.images.id}/queueServices/default"
    runtime_blob  = "${azurerm_storage_account.runtime.id}/blobServices/default"
    runtime_queue = "${azurerm_storage_account.runtime.id}/queueServices/default"
  }
}

resource "azurerm_monitor_diagnostic_setting" "storage" {
  for_each                   = local.storage_service_logs
  name                       = "to-log-analytics"
  target_resource_id         = each.value
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
  enabled_metric {
    category = "Transaction"
  }
}
