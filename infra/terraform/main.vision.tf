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
