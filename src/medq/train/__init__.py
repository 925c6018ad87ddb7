"""Training: configs (`config`), the two-stage loop (`loop`), evaluation and model cards."""
