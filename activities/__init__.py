"""Durable activities: decode the input, call the pipeline step (which uses the ports), encode the output."""
