# Inputs. Every variable is typed, described and validated; defaults give a small, cheap deployment.

variable "location" {
  type        = string
  description = "Azure region for every resource (e.g. westeurope, eastus). Must offer Flex Consumption."
  default     = "westeurope"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]+$", var.location))
    error_message = "location must be an Azure region name in lower case without spaces, e.g. westeurope."
  }
}

variable "environment" {
  type        = string
  description = "Short environment name used in resource names and tags (e.g. dev, test, prod)."
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z0-9]{2,8}$", var.environment))
    error_message = "environment must be 2-8 lower-case letters or digits."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name. Lower-case letters and digits only (storage account names allow nothing else)."
  default     = "imagepipe"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,10}$", var.name_prefix))
    error_message = "name_prefix must be 3-11 lower-case letters or digits, starting with a letter."
  }
}

variable "name_suffix" {
  type        = string
  description = "Suffix that makes global names unique. Null derives a stable 6-character one from the subscription and resource group."
  default     = null

  validation {
    condition     = var.name_suffix == null || can(regex("^[a-z0-9]{3,6}$", var.name_suffix))
    error_message = "name_suffix must be null or 3-6 lower-case letters or digits."
  }
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group to create. Null means rg-<name_prefix>-<environment>."
  default     = null

  validation {
    condition     = var.resource_group_name == null || can(regex("^[-\\w._()]{1,90}$", var.resource_group_name))
    error_message = "resource_group_name must be 1-90 letters, digits, '-', '_', '.', '(' or ')'."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags added to every resource."
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 512 && length(v) <= 256])
    error_message = "Tag names must be at most 512 characters and tag values at most 256."
  }
}

variable "images_storage_replication_type" {
  type        = string
  description = "Replication of the images account (the data of record): GRS (default), RAGRS, GZRS or RAGZRS."
  default     = "GRS"

  validation {
    condition     = contains(["GRS", "RAGRS", "GZRS", "RAGZRS"], var.images_storage_replication_type)
    error_message = "images_storage_replication_type must be one of GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "runtime_storage_replication_type" {
  type        = string
  description = "Replication of the Functions runtime account (task hub, deployment package): ZRS (default) or LRS."
  default     = "ZRS"

  validation {
    condition     = contains(["LRS", "ZRS"], var.runtime_storage_replication_type)
    error_message = "runtime_storage_replication_type must be LRS or ZRS."
  }
}

variable "blob_soft_delete_retention_days" {
  type        = number
  description = "Days a deleted blob stays recoverable (blob soft delete)."
  default     = 7

  validation {
    condition     = var.blob_soft_delete_retention_days >= 1 && var.blob_soft_delete_retention_days <= 365
    error_message = "blob_soft_delete_retention_days must be between 1 and 365."
  }
}

variable "container_soft_delete_retention_days" {
  type        = number
  description = "Days a deleted container stays recoverable (container soft delete)."
  default     = 7

  validation {
    condition     = var.container_soft_delete_retention_days >= 1 && var.container_soft_delete_retention_days <= 365
    error_message = "container_soft_delete_retention_days must be between 1 and 365."
  }
}

variable "images_cors_allowed_origins" {
  type        = list(string)
  description = "Origins (scheme://host[:port], no path) whose pages may PUT images straight to the images account with the signed URL of POST /api/uploads. Empty (default): no CORS rule, browsers cannot upload directly. Methods and headers come from config/cors.json."
  default     = []

  validation {
    condition     = length(var.images_cors_allowed_origins) <= 64
    error_message = "images_cors_allowed_origins holds at most 64 origins (the Blob service limit per CORS rule)."
  }
  validation {
    condition = alltrue([
      for origin in var.images_cors_allowed_origins :
      length(origin) <= 256 && can(regex("^https?://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$", origin))
    ])
    error_message = "Each origin must be scheme://host[:port] in lower case (http or https), without a path, a trailing slash or a wildcard, and at most 256 characters, e.g. https://app.example.com."
  }
  validation {
    condition     = length(distinct(var.images_cors_allowed_origins)) == length(var.images_cors_allowed_origins)
    error_message = "images_cors_allowed_origins lists an origin twice."
  }
}

variable "create_event_subscription" {
  type        = bool
  description = "Create the Event Grid subscription to on_image_blob_created. Leave false on the first apply; set true after the code is published (the function must exist for Event Grid to validate the endpoint)."
  default     = false
}

variable "event_max_delivery_attempts" {
  type        = number
  description = "Event Grid delivery attempts before an event is dead-lettered. Default = retryPolicy.maxDeliveryAttempts in config/eventgrid-subscriptions.json."
  default     = 30

  validation {
    condition     = var.event_max_delivery_attempts >= 1 && var.event_max_delivery_attempts <= 30 && floor(var.event_max_delivery_attempts) == var.event_max_delivery_attempts
    error_message = "event_max_delivery_attempts must be a whole number between 1 and 30."
  }
}

variable "event_time_to_live_minutes" {
  type        = number
  description = "Minutes Event Grid keeps retrying an event before dead-lettering it. Default = retryPolicy.eventTimeToLiveInMinutes in config/eventgrid-subscriptions.json."
  default     = 1440

  validation {
    condition     = var.event_time_to_live_minutes >= 1 && var.event_time_to_live_minutes <= 1440 && floor(var.event_time_to_live_minutes) == var.event_time_to_live_minutes
    error_message = "event_time_to_live_minutes must be a whole number between 1 and 1440."
  }
}

variable "cosmos_throughput_mode" {
  type        = string
  description = "Cosmos DB capacity: serverless (pay per request, no idle cost) or autoscale (provisioned RU/s on the container, for sustained load)."
  default     = "serverless"

  validation {
    condition     = contains(["serverless", "autoscale"], var.cosmos_throughput_mode)
    error_message = "cosmos_throughput_mode must be serverless or autoscale."
  }
}

variable "cosmos_autoscale_max_throughput" {
  type        = number
  description = "Autoscale maximum RU/s of the records container (autoscale mode only; scales between 10% and 100%)."
  default     = 1000

  validation {
    condition     = var.cosmos_autoscale_max_throughput >= 1000 && var.cosmos_autoscale_max_throughput <= 1000000 && var.cosmos_autoscale_max_throughput % 1000 == 0
    error_message = "cosmos_autoscale_max_throughput must be a multiple of 1000 between 1000 and 1000000."
  }
}

variable "cosmos_database_name" {
  type        = string
  description = "Cosmos DB database of the records (app setting COSMOS_DATABASE)."
  default     = "imagepipe"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$", var.cosmos_database_name))
    error_message = "cosmos_database_name must be 1-255 letters, digits, '_' or '-'."
  }
}

variable "cosmos_container_name" {
  type        = string
  description = "Cosmos DB container of the records, partition key /id (app setting COSMOS_CONTAINER)."
  default     = "images"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$", var.cosmos_container_name))
    error_message = "cosmos_container_name must be 1-255 letters, digits, '_' or '-'."
  }
}

variable "vision_sku_name" {
  type        = string
  description = "Azure AI Vision pricing tier: S1 (default, pay per 1,000 transactions, see the README section Deploy to Azure) or F0 (free, 20 calls/min, 5k/month, one per subscription)."
  default     = "S1"

  validation {
    condition     = contains(["F0", "S1"], var.vision_sku_name)
    error_message = "vision_sku_name must be F0 or S1."
  }
}

variable "vision_transactions_per_second" {
  type        = number
  description = "Calls per second the AI Vision account accepts. Null (default) derives it from vision_sku_name: S1 20/s, F0 20/min. Set it after Microsoft raises the account's quota. The app's per-instance limits (VISION_MAX_CONCURRENCY, VISION_RATE_LIMIT_PER_SECOND) are this divided by function_maximum_instance_count."
  default     = null

  validation {
    condition     = var.vision_transactions_per_second == null || (try(var.vision_transactions_per_second > 0, false) && try(var.vision_transactions_per_second <= 1000, false))
    error_message = "vision_transactions_per_second must be null or a number above 0 and at most 1000."
  }
}

variable "vision_location" {
  type        = string
  description = "Region of the AI Vision account. Null means the resource group's region; set it where Image Analysis 4.0 captions are offered if yours lacks them."
  default     = null

  validation {
    condition     = var.vision_location == null || can(regex("^[a-z][a-z0-9]+$", var.vision_location))
    error_message = "vision_location must be null or an Azure region name in lower case without spaces."
  }
}

variable "function_maximum_instance_count" {
  type        = number
  description = "Flex Consumption scale-out limit of the Function App (also caps the load on AI Vision and Cosmos)."
  default     = 40

  validation {
    condition     = var.function_maximum_instance_count >= 1 && var.function_maximum_instance_count <= 1000
    error_message = "function_maximum_instance_count must be between 1 and 1000."
  }
}

variable "function_instance_memory_mb" {
  type        = number
  description = "Flex Consumption instance memory in MB: 2048 or 4096 (image decoding benefits from 2048+)."
  default     = 2048

  validation {
    condition     = contains([2048, 4096], var.function_instance_memory_mb)
    error_message = "function_instance_memory_mb must be 2048 or 4096."
  }
}

variable "reconcile_schedule" {
  type        = string
  description = "NCRONTAB schedule (six fields, with seconds) of the reconcile_images sweep (app setting RECONCILE_SCHEDULE)."
  default     = "0 */10 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.reconcile_schedule))) == 6
    error_message = "reconcile_schedule must be an NCRONTAB expression with six fields, e.g. 0 */10 * * * *."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days Log Analytics keeps logs and Application Insights data."
  default     = 30

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "documents_sku_name" {
  type        = string
  description = "Azure AI Document Intelligence pricing tier: S0 (default, pay per page; query fields are an add-on price) or F0 (free, 500 pages/month, first 2 pages of a document, one per subscription)."
  default     = "S0"

  validation {
    condition     = contains(["F0", "S0"], var.documents_sku_name)
    error_message = "documents_sku_name must be F0 or S0."
  }
}

variable "documents_location" {
  type        = string
  description = "Region of the Document Intelligence account; null (default) uses the resource group's. Set it where the v4 (2024-11-30) prebuilt models and query fields are offered if the group's region lacks them."
  default     = null

  validation {
    condition     = var.documents_location == null || can(regex("^[a-z0-9]+$", var.documents_location))
    error_message = "documents_location must be null or an Azure region name such as westeurope."
  }
}
