"""Provider sync: admin usage, cost and key APIs into the store.

`http` retries and keeps the admin key out of every message; `openai` and `anthropic` are the two
adapters (pure page parsers plus fetches on an injected client); `runner` orchestrates a sync.
"""
