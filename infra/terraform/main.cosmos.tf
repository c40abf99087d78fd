# Records: Cosmos DB for NoSQL, one document per image, partition key /id.
#
# Partition key /id: the hot path is a point read/upsert by image id (1 RU-class operations, no cross-
# partition fan-out). Searches by profile/status/tag/label/time are cross-partition queries served by the
# indexing policy below; at this record size that is cheaper than a second container or a synthetic key.
# Access is Entra ID only (local_authentication_disabled): the app's identity holds the built-in
# "Cosmos DB Built-in Data Contributor" data-plane role on the database (main.identity.tf).
# The app never creates the database or the container (data-plane RBAC cannot); Terraform does.
#
# Text search over OCR text uses Cosmos DB for NoSQL full-text search (FullTextContains/FullTextScore on
# /text): the account capability EnableNoSQLFullTextSearch, and on the container a full-text policy and
# a full-text index on /text (language en-US). azurerm (4.x and 5.x) has no full-text policy or
# full-text index on azurerm_cosmosdb_sql_container, so the container is an azapi resource (API version
# 2025-10-15, the first stable one with indexingPolicy.fullTextIndexes); managing it with azurerm and
# patching it with azapi would have the two providers overwrite each other's indexing policy.
#
# Caution for an existing account: azurerm adds only a short list of capabilities in place, and
# EnableNoSQLFullTextSearch is not on it (checkCapabilitiesCanBeUpdated), so adding it to an account that
# was created without it plans a REPLACEMENT of the account (all records lost). New deployments create
# the account with it. For an existing account, enable it first outside Terraform
# (az cosmosdb update --capabilities ...) so that the plan shows no replacement; see docs/deploy.md.

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
  # EnableNoSQLFullTextSearch: full-text policies and indexes on containers (OCR text search).
  dynamic "capabilities" {
    for_each = concat(var.cosmos_throughput_mode == "serverless" ? ["EnableServerless"] : [], ["EnableNoSQLFullTextSearch"])
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

resource "azapi_resource" "cosmos_images_container" {
  type      = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-10-15"
  name      = var.cosmos_container_name
  parent_id = azurerm_cosmosdb_sql_database.main.id

  body = {
    properties = {
      resource = {
        id           = var.cosmos_container_name
        partitionKey = {
          paths   = ["/id"]
          kind    = "Hash"
          version = 2
        }

        # Full-text search on the OCR text (records.text): tokenised and stemmed as en-US.
        fullTextPolicy = {
          defaultLanguage = local.cosmos_full_text_language
          fullTextPaths   = [
            { path = "/text", language = local.cosmos_full_text_language },
          ]
        }

        indexingPolicy = {
          indexingMode = "consistent"
          automatic    = true

          # Everything is indexed (profile, status, tags[], labelNames[], createdAt, blob.*, image.*,
          # the banded pHash keys) except the large payloads nobody filters on: the raw vision result,
          # the OCR blocks, and the OCR text in the range index (text search uses the full-text index
          # below, which a range index on a long string does not serve). Excluding them keeps write RU
          # per record low.
          includedPaths = [{ path = "/*" }]
          excludedPaths = [
            { path = "/analysis/*" },
            { path = "/readResult/*" },
            # typed document fields with their polygons (docs/document-fields.md); no API filter reads them
            { path = "/documentFields/*" },
            { path = "/text/?" },
            { path = "/\"_etag\"/?" },
          ]

          # Full-text index: FullTextContains / FullTextContainsAll / FullTextScore over /text.
          fullTextIndexes = [{ path = "/text" }]

          compositeIndexes = [
            # "WHERE c.profile = @p ORDER BY c.createdAt DESC" (search by profile, newest first).
            [
              { path = "/profile", order = "ascending" },
              { path = "/createdAt", order = "descending" },
            ],
            # "WHERE c.status = @s ORDER BY c.createdAt DESC" (operators: failed/pending records, newest first).
            [
              { path = "/status", order = "ascending" },
              { path = "/createdAt", order = "descending" },
            ],
          ]
        }
      }

      # Autoscale mode: the container's throughput at creation (later changes go through the
      # throughputSettings update below). Serverless: no options at all (null is left out of the body).
      options = var.cosmos_throughput_mode == "autoscale" ? {
        autoscaleSettings = { maxThroughput = var.cosmos_autoscale_max_throughput }
      } : null
    }
  }
  ignore_null_property = true

  lifecycle {
    # options are read at creation only; later throughput changes go through cosmos_images_throughput.
    ignore_changes = [body.properties.options]
  }

  # The full-text policy needs the account capability.
  depends_on = [azurerm_cosmosdb_account.main]
}

# Autoscale mode: keep the container's autoscale maximum equal to cosmos_autoscale_max_throughput after
# creation (ARM changes throughput through this child resource, not through the container's options).
resource "azapi_update_resource" "cosmos_images_throughput" {
  count     = var.cosmos_throughput_mode == "autoscale" ? 1 : 0
  type      = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/throughputSettings@2025-10-15"
  name      = "default"
  parent_id = azapi_resource.cosmos_images_container.id

  body = {
    properties = {
      resource = {
        autoscaleSettings = { maxThroughput = var.cosmos_autoscale_max_throughput }
      }
    }
  }
}

# Custom label sets (docs/custom-labels.md): each trained version and each set's active pointer is one small
# document, partition key /id, in the records' database (the app's data role covers it). The app reads the
# active versions of a profile once per analysed image (two small cross-partition queries). Autoscale mode:
# the smallest autoscale maximum (1000 RU/s); serverless: pay per request, nothing when idle.
resource "azapi_resource" "cosmos_labelsets_container" {
  type      = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-10-15"
  name      = "labelsets"
  parent_id = azurerm_cosmosdb_sql_database.main.id

  body = {
    properties = {
      resource = {
        id = "labelsets"
        partitionKey = {
          paths   = ["/id"]
          kind    = "Hash"
          version = 2
        }
        indexingPolicy = {
          indexingMode  = "consistent"
          automatic     = true
          includedPaths = [{ path = "/*" }]
          # queries filter on kind, profile, name and id only; the centroids and example list are payload
          excludedPaths = [
            { path = "/labels/*" },
            { path = "/examples/*" },
            { path = "/\"_etag\"/?" },
          ]
        }
      }
      options = var.cosmos_throughput_mode == "autoscale" ? {
        autoscaleSettings = { maxThroughput = 1000 }
      } : null
    }
  }
  ignore_null_property = true

  lifecycle {
    ignore_changes = [body.properties.options]
  }

  depends_on = [azurerm_cosmosdb_account.main]
}

locals {
  # Language of the full-text policy; the app's OCR text is English-first (FullTextScore stems with it).
  cosmos_full_text_language = "en-US"
}
