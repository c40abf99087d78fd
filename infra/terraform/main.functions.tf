# The Function App: Flex Consumption (FC1), Python 3.11, system-assigned identity.
#
# App settings name endpoints only: no key, SAS or connection string. Every data-plane client in the app
# (blob, Cosmos, AI Vision) and the host itself (AzureWebJobsStorage__accountName: task hub, timers,
# locks) authenticate with the app's managed identity; the roles are in main.identity.tf.
# The names are the contract in imagepipe/settings.py and docs/contracts.md.

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

resource "azurerm_function_app_flex_consumption" "app" {
  name                = local.function_app_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  service_plan_id     = azurerm_service_plan.functions.id

  # The deployment package (func publish / zip deploy) is read from the runtime account with the app's
  # system-assigned identity (Storage Blob Data Owner on that account, main.identity.tf).
  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.runtime.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
  storage_authentication_type = "SystemAssignedIdentity"

  runtime_name           = "python"
  runtime_version        = "3.11"
  maximum_instance_count = var.function_maximum_instance_count
  instance_memory_in_mb  = var.function_instance_memory_mb

  https_only                                     = true
  public_network_access_enabled                  = true
  webdeploy_publish_basic_authentication_enabled = false
  client_certificate_mode                        = "Optional"

  identity {
    type = "SystemAssigned"
  }

  app_settings = {
    # Functions host storage (Durable task hub from host.json, timers, locks): identity-based.
    "AzureWebJobsStorage__accountName" = azurerm_storage_account.runtime.name

    # Images: blob service URI + container; the app signs upload URLs with a user-delegation key.
    "IMAGES_STORAGE__blobServiceUri" = trimsuffix(azurerm_storage_account.images.primary_blob_endpoint, "/")
    "IMAGES_CONTAINER"               = azurerm_storage_container.images.name

    # Records: Cosmos DB for NoSQL through the account endpoint.
    "RECORD_STORE"            = "cosmos"
    "COSMOS__accountEndpoint" = azurerm_cosmosdb_account.main.endpoint
    "COSMOS_DATABASE"         = azurerm_cosmosdb_sql_database.main.name
    "COSMOS_CONTAINER"        = azurerm_cosmosdb_sql_container.images.name

    # Vision: Azure AI Vision 4.0 through its custom-subdomain endpoint (required for Entra ID).
    "VISION_PROVIDER"  = "azure"
    "VISION__endpoint" = azurerm_cognitive_account.vision.endpoint

    # Telemetry is sent with an Entra ID token (App Insights local auth is disabled).
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" = "Authorization=AAD"

    # Timer schedule of the reconciliation sweep (NCRONTAB).
    "RECONCILE_SCHEDULE" = var.reconcile_schedule
  }

  site_config {
    # Where telemetry goes (ingestion endpoint); not a credential because local auth is disabled on
    # the Application Insights resource (see main.monitoring.tf).
    application_insights_connection_string = azurerm_application_insights.main.connection_string
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    http2_enabled                          = true
    remote_debugging_enabled               = false
  }

  tags = local.tags
}
