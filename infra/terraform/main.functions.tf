# The Function App: Flex Consumption (FC1), Python 3.11, system-assigned identity.
#
# App settings name endpoints only: no key, SAS or connection string. Every data-plane client in the app
# (blob, Cosmos, AI Vision) and the host itself (AzureWebJobsStorage__*: task hub, timers, locks, keys)
# authenticate with the app's managed identity; the roles are in main.identity.tf.
# The names are the contract in imagepipe/settings.py and docs/contracts.md.
#
# Why azapi and not azurerm_function_app_flex_consumption: that resource (azurerm 4.30 through at least
# 4.81 and 5.x) always writes an app setting AzureWebJobsStorage =
# "DefaultEndpointsProtocol=https;AccountName=<deployment account>;AccountKey=;EndpointSuffix=..." (the
# key is empty with storage_authentication_type = "SystemAssignedIdentity"): on create, and again on every
# later update of the resource, whatever else changed (function_app_flex_consumption_resource.go builds
# the string from storage_container_endpoint, and ExpandSiteConfigFunctionFlexConsumptionApp adds it;
# read filters it out of app_settings, so no plan ever shows it). An exact AzureWebJobsStorage setting
# wins over the AzureWebJobsStorage__* identity settings, so the host, the Durable task hub, timers and
# the function keys (which Event Grid fetches to validate the subscription) would all fail. Here the site
# is one ARM PUT whose siteConfig.appSettings is exactly local.function_app_settings, on create and on
# every update, so the live app never holds an AzureWebJobsStorage setting. docs/deploy.md shows how to
# confirm it after apply.

resource "azurerm_service_plan" "functions" {
  #checkov:skip=CKV_AZURE_225:Flex Consumption (FC1) places and scales instances itself; the plan-level zone balancing of dedicated plans does not apply.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero per demand; a fixed minimum instance count is a dedicated-plan setting (always-ready instances are the Flex equivalent, and cost money while idle).
  name                = "asp-${var.name_prefix}-${var.environment}-${local.name_suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = local.tags
}

locals {
  function_app_settings = {
    # Functions host storage (Durable task hub from host.json, timers, locks, keys): identity-based.
    # There is deliberately no plain AzureWebJobsStorage: it would override these two.
    "AzureWebJobsStorage__accountName" = azurerm_storage_account.runtime.name
    "AzureWebJobsStorage__credential"  = "managedidentity"

    # Images: blob service URI + container; the app signs upload URLs with a user-delegation key.
    "IMAGES_STORAGE__blobServiceUri" = trimsuffix(azurerm_storage_account.images.primary_blob_endpoint, "/")
    "IMAGES_CONTAINER"               = azurerm_storage_container.images.name

    # Records: Cosmos DB for NoSQL through the account endpoint.
    "RECORD_STORE"            = "cosmos"
    "COSMOS__accountEndpoint" = azurerm_cosmosdb_account.main.endpoint
    "COSMOS_DATABASE"         = azurerm_cosmosdb_sql_database.main.name
    "COSMOS_CONTAINER"        = azapi_resource.cosmos_images_container.name
    # Custom label sets (docs/custom-labels.md), next to the records.
    "COSMOS_LABELSETS_CONTAINER" = azapi_resource.cosmos_labelsets_container.name
    # Their embedding model, which `make package` puts in the published package (relative to its root).
    "CUSTOM_LABELS_MODEL_DIR" = "imagepipe/vision/models"

    # Vision: Azure AI Vision 4.0 through its custom-subdomain endpoint (required for Entra ID).
    "VISION_PROVIDER"  = "azure"
    "VISION__endpoint" = azurerm_cognitive_account.vision.endpoint
    # Each instance's share of the account's quota (main.vision.tf): concurrent calls and calls per second.
    "VISION_MAX_CONCURRENCY"       = tostring(local.vision_max_concurrency_per_instance)
    "VISION_RATE_LIMIT_PER_SECOND" = local.vision_rate_limit_per_instance

    # Document fields: Azure AI Document Intelligence through its custom-subdomain endpoint (main.documents.tf).
    "DOCUMENT_FIELDS_PROVIDER"        = "azure"
    "DOCUMENT_INTELLIGENCE__endpoint" = azurerm_cognitive_account.documents.endpoint

    # Telemetry: where it goes (ingestion endpoint; not a credential because local auth is disabled on
    # the Application Insights resource, main.monitoring.tf), sent with an Entra ID token.
    "APPLICATIONINSIGHTS_CONNECTION_STRING"     = azurerm_application_insights.main.connection_string
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" = "Authorization=AAD"

    # Timer schedule of the reconciliation sweep (NCRONTAB).
    "RECONCILE_SCHEDULE" = var.reconcile_schedule
  }
}

resource "azapi_resource" "function_app" {
  type      = "Microsoft.Web/sites@2024-04-01"
  name      = local.function_app_name
  parent_id = azurerm_resource_group.main.id
  location  = azurerm_resource_group.main.location
  tags      = local.tags

  identity {
    type = "SystemAssigned"
  }

  body = {
    kind       = "functionapp,linux"
    properties = {
      serverFarmId        = azurerm_service_plan.functions.id
      httpsOnly           = true
      publicNetworkAccess = "Enabled"
      clientCertEnabled   = false
      clientCertMode      = "Optional"

      functionAppConfig = {
        # The deployment package (func publish / zip deploy) is read from the runtime account with the
        # app's system-assigned identity (Storage Blob Data Owner on that account, main.identity.tf).
        deployment = {
          storage = {
            type           = "blobContainer"
            value          = "${azurerm_storage_account.runtime.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
            authentication = {
              type = "SystemAssignedIdentity"
            }
          }
        }
        runtime = {
          name    = "python"
          version = "3.11"
        }
        scaleAndConcurrency = {
          maximumInstanceCount = var.function_maximum_instance_count
          instanceMemoryMB     = var.function_instance_memory_mb
        }
      }

      siteConfig = {
        # The complete set of app settings: this PUT replaces whatever the site held before.
        appSettings            = [for name, value in local.function_app_settings : { name = name, value = value }]
        minTlsVersion          = "1.2"
        scmMinTlsVersion       = "1.2"
        ftpsState              = "Disabled"
        http20Enabled          = true
        remoteDebuggingEnabled = false
      }
    }
  }

  response_export_values = ["properties.defaultHostName"]
}

# No basic-auth (user/password) publishing: deployments use Entra ID (func publish, az, CI identity).
resource "azapi_resource" "function_app_basic_auth_off" {
  for_each  = toset(["scm", "ftp"])
  type      = "Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01"
  name      = each.key
  parent_id = azapi_resource.function_app.id

  body = {
    properties = {
      allow = false
    }
  }
}
