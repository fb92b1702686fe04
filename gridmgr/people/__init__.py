"""People and access: users, roles, region scopes, departments, tokens, the policy."""
