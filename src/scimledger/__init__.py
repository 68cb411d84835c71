"""scimledger: an event-sourced SCIM 2.0 provisioning engine on PostgreSQL."""
