"""The correction screen: edit an alt-text, accept an LLM suggestion, or keep the original."""
