# Terraform and provider versions. Pinned so that `terraform init` resolves the same providers everywhere.
#
# azurerm >= 4.55.0: tests/infra/test_terraform_schema.py checks every resource type, argument, block and
# attribute reference of this module offline against the azurerm 4.55.0 schema (the @cdktf/provider-azurerm
# 14.23.1 bindings pinned in package.json are generated from exactly that version), so the floor is the
# version the module is verified against. It is above what the module needs: enabled_metric in
# azurerm_monitor_diagnostic_setting (4.31), source_resource_id in azurerm_eventgrid_system_topic (4.40),
# and the EnableNoSQLFullTextSearch Cosmos DB capability (in the account's validation list by 4.55).
# local_authentication_enabled arrives in 4.78 (Cosmos DB, Application Insights) and deprecates
# local_authentication_disabled; 4.x keeps both, so the module uses the one its floor verifies (a
# deprecation warning from 4.78 on). Raise the floor together with newer bindings to switch; 5.0 is
# excluded (it removes deprecated arguments).
#
# azapi >= 2.8.0: the Function App and the records container are azapi resources (main.functions.tf and
# main.cosmos.tf say why). 2.8.0 is the first azapi release whose embedded schema knows
# Microsoft.DocumentDB 2025-10-15 (fullTextPolicy and indexingPolicy.fullTextIndexes); azapi validates every
# body against that schema at plan time.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.55.0, < 5.0.0"
    }
    azapi = {
      source  = "Azure/azapi"
      version = ">= 2.8.0, < 3.0.0"
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

# azapi signs in the same way as azurerm (Azure CLI, managed identity, or ARM_* environment variables).
provider "azapi" {}
