"""HTTP surface: Starlette routes for SCIM, the admin API and the audit API."""
