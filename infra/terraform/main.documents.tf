# Azure AI Document Intelligence (v4, API 2024-11-30): typed fields of claim documents, invoices and receipts
# (prebuilt-invoice / prebuilt-receipt with query fields), kind FormRecognizer, Entra ID only.
# The app calls it when DOCUMENT_FIELDS_PROVIDER=azure (docs/document-fields.md); it is also the path off the
# retiring AI Vision Read API for documents. custom_subdomain_name is required for Entra ID token auth.

resource "azurerm_cognitive_account" "documents" {
  #checkov:skip=CKV_AZURE_134:Public network access is required without a VNet; local (key) auth is disabled, so only identities holding Cognitive Services User get in.
  #checkov:skip=CKV2_AZURE_22:Microsoft-managed encryption keys; documents are analysed in flight and results are deleted by the service after 24 hours.
  name                               = local.documents_account_name
  resource_group_name                = azurerm_resource_group.main.name
  location                           = coalesce(var.documents_location, azurerm_resource_group.main.location)
  kind                               = "FormRecognizer"
  sku_name                           = var.documents_sku_name
  custom_subdomain_name              = local.documents_account_name
  local_auth_enabled                 = false
  public_network_access_enabled      = true
  outbound_network_access_restricted = true

  identity {
    type = "SystemAssigned"
  }

  tags = local.tags
}
