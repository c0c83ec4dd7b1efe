"""API keys in the API: when each was last used (`last_used`)."""
