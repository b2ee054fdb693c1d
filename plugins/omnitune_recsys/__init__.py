"""omnitune recommendation plugin."""
