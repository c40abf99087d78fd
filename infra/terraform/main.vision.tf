# Azure AI Vision (Image Analysis 4.0): kind ComputerVision, Entra ID only.
# custom_subdomain_name is required for Entra ID token auth (the regional endpoint accepts keys only).
# Note: Image Analysis 4.0 caption/dense-caption features exist in a subset of regions; set
# vision_location to one of them when the resource group's region lacks them.

resource "azurerm_cognitive_account" "vision" {
  #checkov:skip=CKV_AZURE_134:Public network access is required without a VNet; local (key) auth is disabled, so only identities holding Cognitive Services User get in.
  #checkov:skip=CKV2_AZURE_22:Microsoft-managed encryption keys; images are analysed in flight and not stored by the service.
  name                               = local.vision_account_name
  resource_group_name                = azurerm_resource_group.main.name
  location                           = coalesce(var.vision_location, azurerm_resource_group.main.location)
  kind                               = "ComputerVision"
  sku_name                           = var.vision_sku_name
  custom_subdomain_name              = local.vision_account_name
  local_auth_enabled                 = false
  public_network_access_enabled      = true
  outbound_network_access_restricted = true

  identity {
    type = "SystemAssigned"
  }

  tags = local.tags
}

# The account's quota, shared by every Function App instance. AI Vision answers 429 above it, and a
# burst of Flex Consumption scale-out would otherwise multiply the calls. Each instance (one Python worker
# process on Flex Consumption) gets an equal share, handed to the app as two settings:
# - VISION_MAX_CONCURRENCY (integer, >= 1): vision calls one process has in flight at once;
#   max(1, floor(tps / maximum instances)).
# - VISION_RATE_LIMIT_PER_SECOND (decimal, > 0): vision calls one process starts per second;
#   tps / maximum instances (the share of the quota, which can be below one call per second).
# S1 allows 20 transactions per second, F0 20 per minute; vision_transactions_per_second overrides both
# after a quota increase. With the defaults (S1, 40 instances): 1 call in flight and 0.5 calls/s each.
locals {
  vision_sku_transactions_per_second = {
    S1 = 20
    F0 = 20 / 60
  }
  vision_transactions_per_second = coalesce(
    var.vision_transactions_per_second,
    local.vision_sku_transactions_per_second[var.vision_sku_name],
  )
  vision_max_concurrency_per_instance = max(1, floor(local.vision_transactions_per_second / var.function_maximum_instance_count))
  vision_rate_limit_per_instance      = format("%.6f", local.vision_transactions_per_second / var.function_maximum_instance_count)
}
