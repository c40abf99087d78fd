# Records: Cosmos DB for NoSQL, one document per image, partition key /id.
#
# Partition key /id: the hot path is a point read/upsert by image id (1 RU-class operations, no cross-
# partition fan-out). Searches by profile/status/tag/label/time are cross-partition queries served by the
# indexing policy below; at this record size that is cheaper than a second container or a synthetic key.
# Access is Entra ID only (local_authentication_disabled): the app's identity holds the built-in
# "Cosmos DB Built-in Data Contributor" data-plane role on the database (main.identity.tf).
# The app never creates the database or the container (data-plane RBAC cannot); Terraform does.

resource "azurerm_cosmosdb_account" "main" {
  #checkov:skip=CKV_AZURE_99:No VNet in this deployment; the Function App reaches Cosmos over its public endpoint and access is Entra ID only (local auth disabled).
  #checkov:skip=CKV_AZURE_101:Public network access is required without a VNet; keys are disabled, so only identities with a data-plane role get in.
  #checkov:skip=CKV_AZURE_100:Microsoft-managed encryption keys; customer-managed keys need a Key Vault and rotation that this data class does not require.
  #checkov:skip=CKV2_AZURE_49:Private endpoints need a VNet and private DNS, which this deployment deliberately does not create.
  name                               = local.cosmos_account_name
  resource_group_name                = azurerm_resource_group.main.name
  location                           = azurerm_resource_group.main.location
  offer_type                         = "Standard"
  kind                               = "GlobalDocumentDB"
  local_authentication_disabled      = true
  access_key_metadata_writes_enabled = false
  public_network_access_enabled      = true
  minimal_tls_version                = "Tls12"
  automatic_failover_enabled         = false

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = azurerm_resource_group.main.location
    failover_priority = 0
    zone_redundant    = false
  }

  # Serverless: pay per RU, no idle cost, best below a few million operations a month.
  # Autoscale: provisioned throughput on the container (cosmos_autoscale_max_throughput).
  dynamic "capabilities" {
    for_each = var.cosmos_throughput_mode == "serverless" ? ["EnableServerless"] : []
    content {
      name = capabilities.value
    }
  }

  tags = local.tags
}

resource "azurerm_cosmosdb_sql_database" "main" {
  name                = var.cosmos_database_name
  resource_group_name = azurerm_resource_group.main.name
  account_name        = azurerm_cosmosdb_account.main.name
}

resource "azurerm_cosmosdb_sql_container" "images" {
  name                  = var.cosmos_container_name
  resource_group_name   = azurerm_resource_group.main.name
  account_name          = azurerm_cosmosdb_account.main.name
  database_name         = azurerm_cosmosdb_sql_database.main.name
  partition_key_paths   = ["/id"]
  partition_key_kind    = "Hash"
  partition_key_version = 2

  dynamic "autoscale_settings" {
    for_each = var.cosmos_throughput_mode == "autoscale" ? [var.cosmos_autoscale_max_throughput] : []
    content {
      max_throughput = autoscale_settings.value
    }
  }

  indexing_policy {
    indexing_mode = "consistent"

    # Everything is indexed (profile, status, tags[], labelNames[], createdAt, blob.*, image.*) except
    # the large payloads nobody filters on: the raw vision result, the OCR blocks, and the full OCR text
    # (text search runs CONTAINS over the projection, which an index on a long string does not serve).
    # Excluding them keeps write RU per record low.
    included_path {
      path = "/*"
    }
    excluded_path {
      path = "/analysis/*"
    }
    excluded_path {
      path = "/readResult/*"
    }
    excluded_path {
      path = "/text/?"
    }
    excluded_path {
      path = "/\"_etag\"/?"
    }

    # "WHERE c.profile = @p ORDER BY c.createdAt DESC" (search by profile, newest first).
    composite_index {
      index {
        path  = "/profile"
        order = "Ascending"
      }
      index {
        path  = "/createdAt"
        order = "Descending"
      }
    }

    # "WHERE c.status = @s ORDER BY c.createdAt DESC" (operators: failed/pending records, newest first).
    composite_index {
      index {
        path  = "/status"
        order = "Ascending"
      }
      index {
        path  = "/createdAt"
        order = "Descending"
      }
    }
  }
}
