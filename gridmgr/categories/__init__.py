"""The category catalogue: components (部件) and events (事件), their limits and departments."""
