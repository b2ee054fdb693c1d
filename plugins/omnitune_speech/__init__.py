"""omnitune's built-in speech plugin: torchaudio front ends and backbones, audio tasks and datasets."""
