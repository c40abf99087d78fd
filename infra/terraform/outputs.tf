# Outputs: what a deployer or a client needs next. No key, SAS or connection string is output.

output "resource_group_name" {
  description = "Resource group that holds the deployment."
  value       = azurerm_resource_group.main.name
}

output "function_app_name" {
  description = "Function App name, for `func azure functionapp publish <name>`."
  value       = azapi_resource.function_app.name
}

output "api_base_url" {
  description = "Base URL of the HTTP API (POST {api_base_url}/images, GET {api_base_url}/images/{id}, ...)."
  value       = "https://${azapi_resource.function_app.output.properties.defaultHostName}/api"
}

output "images_blob_endpoint" {
  description = "Blob service endpoint of the images account (app setting IMAGES_STORAGE__blobServiceUri)."
  value       = azurerm_storage_account.images.primary_blob_endpoint
}

output "images_storage_account_name" {
  description = "Images storage account (containers images and the dead-letter container)."
  value       = azurerm_storage_account.images.name
}

output "runtime_storage_account_name" {
  description = "Functions host storage account (Durable task hub, deployment package)."
  value       = azurerm_storage_account.runtime.name
}

output "cosmos_endpoint" {
  description = "Cosmos DB account endpoint (app setting COSMOS__accountEndpoint)."
  value       = azurerm_cosmosdb_account.main.endpoint
}

output "vision_endpoint" {
  description = "Azure AI Vision custom-subdomain endpoint (app setting VISION__endpoint)."
  value       = azurerm_cognitive_account.vision.endpoint
}

output "documents_endpoint" {
  description = "Azure AI Document Intelligence custom-subdomain endpoint (app setting DOCUMENT_INTELLIGENCE__endpoint)."
  value       = azurerm_cognitive_account.documents.endpoint
}

output "task_hub_name" {
  description = "Durable Functions task hub name (from host.json), stored in the runtime account."
  value       = local.task_hub_name
}

output "function_app_principal_id" {
  description = "Object id of the Function App's system-assigned identity (holder of every data role)."
  value       = azapi_resource.function_app.identity[0].principal_id
}

output "event_subscription_created" {
  description = "Whether the Event Grid subscription exists. False: publish the code, then apply with create_event_subscription = true."
  value       = var.create_event_subscription
}
