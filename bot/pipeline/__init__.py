"""The request pipeline (the engine as named stages) and durable work."""
