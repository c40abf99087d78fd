# Observability: a Log Analytics workspace (storage logs, App Insights data) and a workspace-based
# Application Insights resource. Local (instrumentation-key) authentication is disabled, so the
# connection string the host needs to find the ingestion endpoint is not a credential: telemetry is
# accepted only with an Entra ID token of an identity holding Monitoring Metrics Publisher
# (APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "Authorization=AAD" in the app settings).

resource "azurerm_log_analytics_workspace" "main" {
  name                = "log-${var.name_prefix}-${var.environment}-${local.name_suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "main" {
  name                          = "appi-${var.name_prefix}-${var.environment}-${local.name_suffix}"
  resource_group_name           = azurerm_resource_group.main.name
  location                      = azurerm_resource_group.main.location
  workspace_id                  = azurerm_log_analytics_workspace.main.id
  application_type              = "web"
  local_authentication_disabled = true
  tags                          = local.tags
}
