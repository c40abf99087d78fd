# Terraform and provider versions. Pinned so that `terraform init` resolves the same provider everywhere.
# azurerm >= 4.30 has azurerm_function_app_flex_consumption with identity-based deployment storage and
# storage containers addressed by storage_account_id (management plane, no data-plane keys needed).
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.30"
    }
  }
}

provider "azurerm" {
  features {
    resource_group {
      # A resource group that still holds resources Terraform does not know about is not deleted.
      prevent_deletion_if_contains_resources = true
    }
    cognitive_account {
      # Soft-deleted AI Vision accounts keep their custom subdomain; purge on destroy so a re-apply works.
      purge_soft_delete_on_destroy = true
    }
  }

  # Shared keys are disabled on every storage account: any data-plane call the provider makes must use
  # Entra ID. Containers are created through the management plane (storage_account_id), so none is needed
  # for them; this flag keeps any other storage call identity-based too.
  storage_use_azuread = true
}
