"""The storage layer: the only place that speaks SQL."""
