"""acme-omnitune-tabular: tabular classification for omnitune, as a third-party plugin."""
