"""omnitune's built-in text plugin: transformers backbones, text classification, text datasets."""
