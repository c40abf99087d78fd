# imagepipe on Azure: resource group, names, tags, and the JSON files Terraform shares with the app.
#
# Layout: main.storage.tf (images + runtime accounts), main.events.tf (Event Grid), main.cosmos.tf
# (records), main.vision.tf (AI Vision), main.functions.tf (Flex Consumption app), main.monitoring.tf
# (Log Analytics + Application Insights), main.identity.tf (every role assignment, least privilege).
# Nothing here creates or outputs a key, SAS or connection string: every data-plane call is Entra ID.

data "azurerm_client_config" "current" {}

locals {
  resource_group_name = coalesce(var.resource_group_name, "rg-${var.name_prefix}-${var.environment}")

  # A short, stable suffix makes the globally unique names (storage, Cosmos, AI Vision subdomain,
  # function app host name) unique per subscription and resource group without a random provider.
  name_suffix = coalesce(
    var.name_suffix,
    substr(sha256("${data.azurerm_client_config.current.subscription_id}/${local.resource_group_name}"), 0, 6),
  )

  images_storage_account_name  = "${var.name_prefix}img${local.name_suffix}"
  runtime_storage_account_name = "${var.name_prefix}rt${local.name_suffix}"
  function_app_name            = "func-${var.name_prefix}-${var.environment}-${local.name_suffix}"
  cosmos_account_name          = "cosmos-${var.name_prefix}-${var.environment}-${local.name_suffix}"
  vision_account_name          = "vision-${var.name_prefix}-${var.environment}-${local.name_suffix}"
  documents_account_name       = "docs-${var.name_prefix}-${var.environment}-${local.name_suffix}"

  # The Event Grid subscription filter has one source, shared with the devhost's Event Grid emulator.
  eventgrid_config = jsondecode(file("${path.module}/../../config/eventgrid-subscriptions.json"))
  # one() fails the plan if the file ever holds more than one subscription: this module wires exactly one.
  event_subscription = one(local.eventgrid_config.subscriptions)

  # The CORS rule of the images blob service (browser direct upload), shared with the local stack.
  images_cors = jsondecode(file("${path.module}/../../config/cors.json"))

  # The Durable Functions task hub name lives in host.json; it is reported as an output.
  host_json     = jsondecode(file("${path.module}/../../host.json"))
  task_hub_name = local.host_json.extensions.durableTask.hubName

  tags = merge(
    {
      application = "imagepipe"
      environment = var.environment
      managed_by  = "terraform"
    },
    var.tags,
  )
}

resource "azurerm_resource_group" "main" {
  name     = local.resource_group_name
  location = var.location
  tags     = local.tags
}
