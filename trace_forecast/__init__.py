"""trace_forecast."""
