"""Model backends shared by chat and training: one interface, several implementations.

- `llm.base`: the interface (`ChatBackend`, `Delta`) and the hook through which training tells the
  chat which fine-tuned model version is active (`set_active_model_resolver`).
- implementations: OpenAI-compatible HTTP, local transformers (+ PEFT adapter), extractive.
"""
