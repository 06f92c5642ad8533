"""The record layer: spans, span events and metric points from facts, no I/O and no threads."""
