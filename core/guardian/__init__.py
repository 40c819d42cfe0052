"""Guardian providers: offline (deterministic, no key), anthropic and openai."""
