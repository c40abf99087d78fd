# Event Grid: the images account's BlobCreated events -> the starter function `on_image_blob_created`.
#
# Every filter value comes from config/eventgrid-subscriptions.json (local.event_subscription), the file
# the devhost's Event Grid emulator reads too, so local runs and Azure filter the same events:
# included event types, subject prefix (the images container), advanced filter on data.api
# (PutBlob, PutBlockList, CopyBlob), dead-letter container. Retry policy: variables whose defaults are
# the JSON's values (tests/infra checks they stay equal).
#
# Why the subscription is created in a second apply (create_event_subscription = true):
# an Azure Function endpoint is validated when the subscription is created: Event Grid resolves
# "<function app id>/functions/on_image_blob_created" and fetches the function's Event Grid system key.
# That function exists only after the code has been published to the (empty) Function App, so the first
# apply creates everything else, then `func azure functionapp publish`, then apply again with
# create_event_subscription = true. See README.md, "Deploy to Azure".

resource "azurerm_eventgrid_system_topic" "images" {
  name                = "evgt-${var.name_prefix}-${var.environment}-images"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  source_resource_id  = azurerm_storage_account.images.id
  topic_type          = "Microsoft.Storage.StorageAccounts"

  # The topic's own identity writes dead letters (no storage key or SAS anywhere).
  identity {
    type = "SystemAssigned"
  }

  tags = local.tags
}

locals {
  # Advanced filter operators this module translates; anything else in the JSON fails the plan (below)
  # instead of being dropped silently.
  supported_advanced_filter_operators = ["StringIn"]
  advanced_filters_string_in          = [
    for f in local.event_subscription.advancedFilters : f if f.operatorType == "StringIn"
  ]
}

resource "azurerm_eventgrid_system_topic_event_subscription" "images_blob_created" {
  count               = var.create_event_subscription ? 1 : 0
  name                = local.event_subscription.name
  system_topic        = azurerm_eventgrid_system_topic.images.name
  resource_group_name = azurerm_resource_group.main.name

  event_delivery_schema = "EventGridSchema"
  included_event_types  = local.event_subscription.includedEventTypes

  subject_filter {
    subject_begins_with = local.event_subscription.subjectBeginsWith
    subject_ends_with   = local.event_subscription.subjectEndsWith == "" ? null : local.event_subscription.subjectEndsWith
    case_sensitive      = false
  }

  advanced_filter {
    dynamic "string_in" {
      for_each = local.advanced_filters_string_in
      content {
        key    = string_in.value.key
        values = string_in.value.values
      }
    }
  }

  azure_function_endpoint {
    function_id                       = "${azapi_resource.function_app.id}/functions/${local.event_subscription.function}"
    max_events_per_batch              = 1
    preferred_batch_size_in_kilobytes = 64
  }

  retry_policy {
    max_delivery_attempts = var.event_max_delivery_attempts
    event_time_to_live    = var.event_time_to_live_minutes
  }

  # Undeliverable events land in the dead-letter container, written with the topic's identity.
  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.images.id
    storage_blob_container_name = azurerm_storage_container.deadletters.name
  }

  lifecycle {
    precondition {
      condition = alltrue([
        for f in local.event_subscription.advancedFilters :
        contains(local.supported_advanced_filter_operators, f.operatorType)
      ])
      error_message = "config/eventgrid-subscriptions.json uses an advanced filter operator main.events.tf does not translate (supported: StringIn)."
    }
    precondition {
      condition     = startswith(local.event_subscription.subjectBeginsWith, "/blobServices/default/containers/${azurerm_storage_container.images.name}/")
      error_message = "The subscription's subjectBeginsWith must point at the images container."
    }
  }

  # The topic must be allowed to write dead letters (and the app to run) before the subscription exists.
  depends_on = [azurerm_role_assignment.this]
}
